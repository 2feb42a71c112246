package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/sirupsen/logrus"
)

// ServerOptions are the data-plane listener's limits.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration // default 10s
	IdleTimeout       time.Duration // default 120s
	MaxHeaderBytes    int           // default 64 KiB
	// HTTP3Port, when not zero, is advertised in Alt-Svc on TCP responses:
	// the port of the UDP socket given to ServeHTTP3.
	HTTP3Port int
}

// Server serves a handler over mTLS: HTTP/2 and HTTP/1.1 on TCP, and HTTP/3
// on UDP with the same TLS configuration and the same handler, so a caller's
// principal is the same whichever protocol it uses.
type Server struct {
	srv *http.Server
	h3  *http3.Server
	log logrus.FieldLogger
}

// NewServer prepares the listener side. tlsCfg must require and verify client
// certificates (identity.ServerTLSConfig builds such a config).
func NewServer(h http.Handler, tlsCfg *tls.Config, opts ServerOptions, logger logrus.FieldLogger) (*Server, error) {
	if tlsCfg == nil || tlsCfg.ClientAuth != tls.RequireAndVerifyClientCert && tlsCfg.VerifyPeerCertificate == nil {
		return nil, errors.New("proxy: server: TLS config must verify client certificates")
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 120 * time.Second
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	cfg := tlsCfg.Clone()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	tcpHandler := h
	if opts.HTTP3Port != 0 {
		altSvc := fmt.Sprintf(`h3=":%d"; ma=86400`, opts.HTTP3Port)
		tcpHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Alt-Svc", altSvc)
			h.ServeHTTP(w, r)
		})
	}
	return &Server{
		h3: &http3.Server{
			Handler:        h,
			TLSConfig:      http3.ConfigureTLSConfig(tlsCfg.Clone()),
			MaxHeaderBytes: opts.MaxHeaderBytes,
			IdleTimeout:    opts.IdleTimeout,
		},
		srv: &http.Server{
			Handler:           tcpHandler,
			TLSConfig:         cfg,
			ReadHeaderTimeout: opts.ReadHeaderTimeout,
			IdleTimeout:       opts.IdleTimeout,
			MaxHeaderBytes:    opts.MaxHeaderBytes,
			ErrorLog:          newStdLogger(logger),
		},
		log: logger,
	}, nil
}

// Serve accepts connections on ln until Shutdown. It returns nil after a
// clean shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("proxy: serve: %w", err)
	}
	return nil
}

// ServeHTTP3 serves HTTP/3 on a UDP socket until Shutdown.
func (s *Server) ServeHTTP3(pc net.PacketConn) error {
	err := s.h3.Serve(pc)
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, quic.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("proxy: serve HTTP/3: %w", err)
}

// Shutdown stops accepting and waits for in-flight requests on both
// protocols until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.h3.Shutdown(ctx) }()
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, <-errc)
}
