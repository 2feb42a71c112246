package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"
)

// ServerOptions are the data-plane listener's limits.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration // default 10s
	IdleTimeout       time.Duration // default 120s
	MaxHeaderBytes    int           // default 64 KiB
}

// Server serves a handler over mTLS: HTTP/2 and HTTP/1.1 on TCP.
type Server struct {
	srv *http.Server
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
	return &Server{
		srv: &http.Server{
			Handler:           h,
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

// Shutdown stops accepting and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}
