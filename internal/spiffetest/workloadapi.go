package spiffetest

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// WorkloadAPI is a fake SPIFFE Workload API: a real gRPC server on a unix
// socket serving the X.509 part of the API (FetchX509SVID and
// FetchX509Bundles) the way a SPIRE agent does. It requires the
// "workload.spiffe.io: true" security header, answers PermissionDenied until
// an SVID is set (as an agent does for an unregistered workload), and pushes
// every SetX509SVID to all open streams.
type WorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer

	dir    string
	addr   string
	server *grpc.Server
	wg     sync.WaitGroup
	stop   sync.Once

	mu      sync.Mutex
	resp    *workload.X509SVIDResponse
	bundles *workload.X509BundlesResponse
	subs    map[chan struct{}]struct{}
	streams int
}

// NewWorkloadAPI starts a fake Workload API. It is stopped by t.Cleanup.
func NewWorkloadAPI(t testing.TB) *WorkloadAPI {
	t.Helper()
	// Unix socket paths are limited to 108 bytes: t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "wlapi")
	if err != nil {
		t.Fatalf("spiffetest: %v", err)
	}
	sock := filepath.Join(dir, "agent.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("spiffetest: listen on %s: %v", sock, err)
	}
	w := &WorkloadAPI{
		dir:    dir,
		addr:   "unix://" + sock,
		server: grpc.NewServer(),
		subs:   make(map[chan struct{}]struct{}),
	}
	workload.RegisterSpiffeWorkloadAPIServer(w.server, w)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		_ = w.server.Serve(lis)
	}()
	t.Cleanup(w.Stop)
	return w
}

// Addr returns the server's address, "unix:///…/agent.sock".
func (w *WorkloadAPI) Addr() string { return w.addr }

// Stop stops the server, closing every stream, as an agent that goes away.
// It is safe to call more than once.
func (w *WorkloadAPI) Stop() {
	w.stop.Do(func() {
		w.server.Stop()
		w.wg.Wait()
		os.RemoveAll(w.dir)
	})
}

// Streams returns how many FetchX509SVID streams have been opened.
func (w *WorkloadAPI) Streams() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.streams
}

// SetX509SVID makes svid, with bundle as its trust domain's bundle and the
// federated bundles, the workload's identity, and pushes it to all open
// streams.
func (w *WorkloadAPI) SetX509SVID(svid *x509svid.SVID, bundle *x509bundle.Bundle, federated ...*x509bundle.Bundle) {
	_, keyDER, err := svid.MarshalRaw()
	if err != nil {
		panic("spiffetest: marshal SVID: " + err.Error())
	}
	resp := &workload.X509SVIDResponse{
		Svids: []*workload.X509SVID{{
			SpiffeId:    svid.ID.String(),
			X509Svid:    concatDER(svid.Certificates),
			X509SvidKey: keyDER,
			Bundle:      concatDER(bundle.X509Authorities()),
		}},
		FederatedBundles: make(map[string][]byte),
	}
	bundles := &workload.X509BundlesResponse{Bundles: map[string][]byte{
		bundle.TrustDomain().IDString(): concatDER(bundle.X509Authorities()),
	}}
	for _, b := range federated {
		resp.FederatedBundles[b.TrustDomain().IDString()] = concatDER(b.X509Authorities())
		bundles.Bundles[b.TrustDomain().IDString()] = concatDER(b.X509Authorities())
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	w.resp, w.bundles = resp, bundles
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default: // an update is already pending; the stream sends the latest
		}
	}
}

// FetchX509SVID implements the Workload API.
func (w *WorkloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	w.mu.Lock()
	w.streams++
	w.mu.Unlock()
	return w.serve(stream, func() (any, bool) { return w.resp, w.resp != nil },
		func(m any) error { return stream.Send(m.(*workload.X509SVIDResponse)) })
}

// FetchX509Bundles implements the Workload API.
func (w *WorkloadAPI) FetchX509Bundles(_ *workload.X509BundlesRequest, stream grpc.ServerStreamingServer[workload.X509BundlesResponse]) error {
	return w.serve(stream, func() (any, bool) { return w.bundles, w.bundles != nil },
		func(m any) error { return stream.Send(m.(*workload.X509BundlesResponse)) })
}

// serve checks the security header, then sends the current response (read
// under w.mu by current) and every later one until the client goes away.
func (w *WorkloadAPI) serve(stream grpc.ServerStream, current func() (any, bool), send func(any) error) error {
	ctx := stream.Context()
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.subs[ch] = struct{}{}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.subs, ch)
		w.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		msg, ok := current()
		w.mu.Unlock()
		if !ok {
			return status.Error(codes.PermissionDenied, "no identity issued")
		}
		if err := send(msg); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
}

func concatDER(certs []*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, c.Raw...)
	}
	return b
}
