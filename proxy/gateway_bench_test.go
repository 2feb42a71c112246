package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
)

// BenchmarkEndToEnd sends the load generator's ~1 KB chat request through a
// complete in-process gateway (mTLS HTTP/2, default policy with its cache,
// audit log with fsync, JSON request log) and, for comparison, through a bare
// httputil.ReverseProxy behind the same TLS configuration, to the same fake
// provider, 64 requests in flight. Client and provider run in the same
// process, so ns/op and cpu-µs/op are of the whole exchange; the difference
// between the two sub-benchmarks is the gateway's governance. Profile it:
//
//	go test -run '^$' -bench 'EndToEnd/portcullis/chat' -benchtime 20000x -cpuprofile p.prof ./proxy/
//	go test -run '^$' -bench 'EndToEnd/baseline/chat' -benchtime 20000x -cpuprofile b.prof ./proxy/
//	go tool pprof -top -diff_base b.prof p.prof
func BenchmarkEndToEnd(b *testing.B) {
	for _, target := range []string{"baseline", "portcullis"} {
		for _, mode := range []string{"chat", "stream"} {
			b.Run(target+"/"+mode, func(b *testing.B) {
				env := newBenchEnv(b, target == "portcullis")
				body := benchBody(mode == "stream")
				env.drive(b, body, mode == "stream")
			})
		}
	}
}

const benchProviderKey = "sk-bench-provider-0123456789"

type benchEnv struct {
	url    string
	client *http.Client
}

func newBenchEnv(b *testing.B, governed bool) *benchEnv {
	b.Helper()
	ctx := context.Background()
	quiet := logrus.New()
	quiet.Out = io.Discard
	quiet.Level = logrus.ErrorLevel
	td := spiffeid.RequireTrustDomainFromString(identity.DevTrustDomain)
	ca, err := identity.NewDevCA(td, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	fake, err := fakeprovider.Listen("127.0.0.1:0", fakeprovider.Options{APIKey: benchProviderKey, Logger: quiet, RecordLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fake.Close() })
	upstream, _ := url.Parse(fake.URL())

	var h http.Handler
	if governed {
		prov := &proxy.Provider{Name: "fake", Format: proxy.FormatOpenAI, BaseURL: upstream}
		prov.SetKey(benchProviderKey)
		router, err := proxy.NewRouter([]proxy.Route{{Model: "gpt-4o-mini", Provider: prov}})
		if err != nil {
			b.Fatal(err)
		}
		engine, err := policy.New(ctx, policy.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		alog, err := audit.Open(b.TempDir(), audit.Options{Logger: quiet}) // fsync on, as in production
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { alog.Close() })
		resolver, err := identity.NewResolver(identity.DevTemplates())
		if err != nil {
			b.Fatal(err)
		}
		// The request log is formatted as in production (JSON, info) and discarded.
		reqLog := logrus.New()
		reqLog.Out = io.Discard
		reqLog.Formatter = &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano}
		gw, err := proxy.New(proxy.Config{
			Resolver: resolver, Policy: engine, Audit: alog, Router: router, Logger: reqLog,
			DigestKey: []byte("bench digest key 0123456789"),
		})
		if err != nil {
			b.Fatal(err)
		}
		h = gw
	} else {
		h = bareProxy(upstream)
	}

	src, err := ca.GatewaySource(time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	tlsCfg, err := identity.ServerTLSConfig(src, []spiffeid.TrustDomain{td})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := proxy.NewServer(h, tlsCfg, proxy.ServerOptions{}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()

	svid, err := ca.Issue(spiffeid.RequireFromString(identity.DevAppID), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{
		TLSClientConfig: identity.ClientTLSConfig(identity.NewStaticSource(svid, x509bundle.NewSet(ca.Bundle())), td),
		Protocols:       &protos,
	}
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return &benchEnv{url: "https://" + ln.Addr().String() + "/v1/chat/completions", client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// bareProxy is bench/baseline's handler: SPIFFE ID check, Rewrite, provider key.
func bareProxy(up *url.URL) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = up.Scheme, up.Host
			pr.Out.URL.Path = strings.TrimSuffix(up.Path, "/") + strings.TrimPrefix(pr.In.URL.Path, "/v1")
			pr.Out.Host = ""
			pr.Out.Header.Set("Authorization", "Bearer "+benchProviderKey)
		},
		Transport:     proxy.NewTransport(),
		FlushInterval: -1,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := identity.PeerID(r.TLS); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

func benchBody(stream bool) []byte {
	prefix, extra := "Hello. ", ""
	if stream {
		prefix, extra = "[fake:chunks=50] ", `,"stream":true,"stream_options":{"include_usage":true}`
	}
	text := prefix + strings.Repeat("Summarise the customer's ticket and propose a reply that is polite, precise and short. ", 10)[:860]
	return []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful support assistant for Acme Corp."},` +
		`{"role":"user","content":"` + text + `"}],"max_completion_tokens":256` + extra + `}`)
}

// drive runs b.N requests with 64 in flight and reports the process's CPU
// time per request (client, gateway and provider together).
func (e *benchEnv) drive(b *testing.B, body []byte, stream bool) {
	do := func() error {
		resp, err := e.client.Post(e.url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, got)
		}
		if stream && !bytes.Contains(got, []byte("data: [DONE]")) {
			return fmt.Errorf("stream without [DONE]")
		}
		return nil
	}
	for range 8 { // connections, pools and the decision cache warm
		if err := do(); err != nil {
			b.Fatal(err)
		}
	}
	var failed atomic.Value
	cpu0 := cpuTime()
	b.ResetTimer()
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := do(); err != nil {
				failed.CompareAndSwap(nil, err)
			}
		}
	})
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
