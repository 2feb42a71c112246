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
	// WriteByteTimeout closes an HTTP/2 connection to which no byte could
	// be written for this long (a client that stopped reading its
	// socket); it also pings an idle connection after twice this and
	// closes it if no answer comes within this. Default 30s; negative: off.
	WriteByteTimeout time.Duration
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

	// base is the parent of every request context; cancelling it ends the
	// requests still running when the drain time is over.
	base   context.Context
	cancel context.CancelCauseFunc
}

// ErrDrainTimeout is the cause given to requests cancelled because they were
// still running when a graceful shutdown's drain time ran out. It appears in
// their completion audit records.
var ErrDrainTimeout = errors.New("gateway shutting down: drain time exceeded")

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
	if opts.WriteByteTimeout == 0 {
		opts.WriteByteTimeout = 30 * time.Second
	}
	var h2 *http.HTTP2Config
	if d := opts.WriteByteTimeout; d > 0 {
		h2 = &http.HTTP2Config{WriteByteTimeout: d, SendPingTimeout: 2 * d, PingTimeout: d}
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
	base, cancel := context.WithCancelCause(context.Background())
	return &Server{
		base:   base,
		cancel: cancel,
		h3: &http3.Server{
			Handler:        h,
			TLSConfig:      http3.ConfigureTLSConfig(tlsCfg.Clone()),
			MaxHeaderBytes: opts.MaxHeaderBytes,
			IdleTimeout:    opts.IdleTimeout,
			ConnContext:    func(context.Context, *quic.Conn) context.Context { return base },
		},
		srv: &http.Server{
			BaseContext:       func(net.Listener) context.Context { return base },
			Handler:           tcpHandler,
			TLSConfig:         cfg,
			ReadHeaderTimeout: opts.ReadHeaderTimeout,
			IdleTimeout:       opts.IdleTimeout,
			MaxHeaderBytes:    opts.MaxHeaderBytes,
			HTTP2:             h2,
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

// Shutdown stops accepting and lets in-flight requests and streams on both
// protocols finish until ctx ends. Requests still running then are cancelled
// with ErrDrainTimeout (their completion records say so), given a moment to
// write those records, and their connections are closed. It returns
// ErrDrainTimeout if it had to cancel anything.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.drain(ctx) == nil {
		s.cancel(nil)
		return nil
	}
	s.log.Warn("drain time exceeded: cancelling the requests still in flight")
	s.cancel(ErrDrainTimeout)
	wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s.drain(wctx) != nil {
		_ = s.srv.Close()
		_ = s.h3.Close()
	}
	return ErrDrainTimeout
}

func (s *Server) drain(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.h3.Shutdown(ctx) }()
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, <-errc)
}
