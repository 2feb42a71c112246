package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9443", "mTLS listen address")
	upstream := fs.String("upstream", "", "upstream base URL, e.g. http://127.0.0.1:9000/v1")
	cert := fs.String("cert", "", "server SVID certificate (PEM)")
	key := fs.String("key", "", "server SVID key (PEM)")
	bundle := fs.String("bundle", "", "trust bundle for client SVIDs (PEM)")
	keyFile := fs.String("api-key-file", "", "provider key to put on upstream requests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	up, err := url.Parse(*upstream)
	if err != nil || up.Host == "" {
		return fmt.Errorf("-upstream %q: want an absolute URL", *upstream)
	}
	svid, err := x509svid.Load(*cert, *key)
	if err != nil {
		return err
	}
	td := svid.ID.TrustDomain()
	b, err := x509bundle.Load(td, *bundle)
	if err != nil {
		return err
	}
	var auth string
	if *keyFile != "" {
		k, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		auth = "Bearer " + strings.TrimSpace(string(k))
	}

	tlsCfg := tlsconfig.MTLSServerConfig(svid, b, tlsconfig.AuthorizeMemberOf(td))
	tlsCfg.MinVersion = tls.VersionTLS13
	tlsCfg.NextProtos = []string{"h2", "http/1.1"}

	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// /v1/chat/completions -> <upstream>/chat/completions
			pr.Out.URL.Scheme, pr.Out.URL.Host = up.Scheme, up.Host
			pr.Out.URL.Path = strings.TrimSuffix(up.Path, "/") + strings.TrimPrefix(pr.In.URL.Path, "/v1")
			pr.Out.URL.RawPath = ""
			pr.Out.Host = ""
			pr.Out.Header.Set("Authorization", auth)
		},
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          512,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 120 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		FlushInterval: -1,
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The one identity check a bare proxy makes: the verified peer has a SPIFFE ID.
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "client certificate required", http.StatusForbidden)
			return
		}
		if _, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0]); err != nil {
			http.Error(w, "client certificate is not an SVID", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	})
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("baseline: bare mTLS reverse proxy on https://%s -> %s\n", ln.Addr(), up)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}
