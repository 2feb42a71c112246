package etcdtest

import (
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Server is one embedded etcd member, reached through a loopback TCP relay
// that the test can cut to make etcd unreachable.
type Server struct {
	e     *embed.Etcd
	relay *relay
}

// Start starts a member in a temporary directory on free loopback ports
// and waits until it serves clients (at most 30 s).
func Start(t testing.TB) *Server {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "portcullis-test"
	cfg.Dir = filepath.Join(t.TempDir(), "etcd")
	client, peer := url.URL{Scheme: "http", Host: "127.0.0.1:0"}, url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("etcdtest: start embedded etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		t.Fatalf("etcdtest: embedded etcd failed: %v", err)
	case <-time.After(30 * time.Second):
		e.Close()
		t.Fatal("etcdtest: embedded etcd not ready after 30s")
	}
	r, err := newRelay(e.Clients[0].Addr().String())
	if err != nil {
		e.Close()
		t.Fatalf("etcdtest: %v", err)
	}
	s := &Server{e: e, relay: r}
	t.Cleanup(func() {
		r.close()
		e.Close()
	})
	return s
}

// Endpoints are the client URLs to give an etcd client (the relay's).
func (s *Server) Endpoints() []string { return []string{"http://" + s.relay.addr} }

// DirectEndpoints are the member's own client URLs, which Cut does not affect.
func (s *Server) DirectEndpoints() []string {
	return []string{fmt.Sprintf("http://%s", s.e.Clients[0].Addr())}
}

// Cut makes etcd unreachable through Endpoints: open connections are reset
// and new ones refused, as when the member crashes or the network fails.
func (s *Server) Cut() { s.relay.cut() }

// Restore lets clients reach etcd again on the same address.
func (s *Server) Restore(t testing.TB) {
	t.Helper()
	if err := s.relay.restore(); err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
}
