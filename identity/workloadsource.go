package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// WorkloadSource serves the SVID and bundles (own and federated) that the
// SPIFFE Workload API (a SPIRE agent) streams to this process. Rotation is
// pushed by the agent and needs no restart. If the agent goes away the last
// SVID keeps being served until it expires, at which point peers refuse it.
type WorkloadSource struct {
	x509     *workloadapi.X509Source
	log      logrus.FieldLogger
	degraded atomic.Bool
	updated  chan struct{}
}

// WorkloadOption configures a WorkloadSource.
type WorkloadOption func(*WorkloadSource)

// WithLogger makes the source log when the Workload API becomes unreachable
// (the source is degraded: it keeps serving its current SVID until that
// expires) and when it recovers.
func WithLogger(l logrus.FieldLogger) WorkloadOption {
	return func(s *WorkloadSource) { s.log = l }
}

// NewWorkloadSource connects to the Workload API at socketAddr ("unix:///path",
// a bare absolute path, or "" for $SPIFFE_ENDPOINT_SOCKET) and blocks until the
// first X.509-SVID arrives. It fails with a clear error if none arrives within
// timeout (which must be positive), which is what happens when no agent is
// listening or this workload is not registered. ctx can cancel the wait
// earlier; the source itself lives until Close.
func NewWorkloadSource(ctx context.Context, socketAddr string, timeout time.Duration, options ...WorkloadOption) (*WorkloadSource, error) {
	s := &WorkloadSource{updated: make(chan struct{}, 1)}
	for _, o := range options {
		o(s)
	}
	if s.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		s.log = l
	}
	if timeout <= 0 {
		return nil, errors.New("identity: workload API source: timeout must be positive")
	}
	if strings.HasPrefix(socketAddr, "/") {
		socketAddr = "unix://" + socketAddr
	}
	clientOpts := []workloadapi.ClientOption{workloadapi.WithLogger(watchLogger{s})}
	where := "$SPIFFE_ENDPOINT_SOCKET"
	if socketAddr != "" {
		if err := workloadapi.ValidateAddress(socketAddr); err != nil {
			return nil, fmt.Errorf("identity: workload API address %q: %w", socketAddr, err)
		}
		clientOpts = append(clientOpts, workloadapi.WithAddr(socketAddr))
		where = socketAddr
	}
	opts := []workloadapi.X509SourceOption{workloadapi.WithClientOptions(clientOpts...)}

	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	src, err := workloadapi.NewX509Source(waitCtx, opts...)
	if err != nil {
		if errors.Is(waitCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("identity: no X.509-SVID from the Workload API at %s within %s "+
				"(is the SPIRE agent running, and is this workload registered?): %w", where, timeout, err)
		}
		return nil, fmt.Errorf("identity: workload API source at %s: %w", where, err)
	}
	s.x509 = src
	go s.follow()
	return s, nil
}

// follow notices updates from the Workload API: the first after an outage
// ends the degraded state. Updates are passed on to Updated's channel.
func (s *WorkloadSource) follow() {
	for range s.x509.Updated() {
		if s.degraded.CompareAndSwap(true, false) {
			s.log.Info("identity: Workload API reachable again; SVID updates resume")
		}
		select {
		case s.updated <- struct{}{}:
		default:
		}
	}
}

// Degraded reports whether the Workload API is currently unreachable, so the
// source is serving its last SVID without updates.
func (s *WorkloadSource) Degraded() bool { return s.degraded.Load() }

// watchLogger receives go-spiffe's client log lines and turns a failed watch
// into the source's degraded state, logged once per outage.
type watchLogger struct{ s *WorkloadSource }

func (w watchLogger) Debugf(format string, args ...any) {
	w.s.log.Debugf("workloadapi: "+format, args...)
}
func (w watchLogger) Infof(format string, args ...any) {
	w.s.log.Infof("workloadapi: "+format, args...)
}
func (w watchLogger) Warnf(format string, args ...any) {
	w.s.log.Warnf("workloadapi: "+format, args...)
}
func (w watchLogger) Errorf(format string, args ...any) {
	if strings.HasPrefix(format, "Failed to watch the Workload API") {
		if w.s.degraded.CompareAndSwap(false, true) {
			expires := "unknown"
			if w.s.x509 != nil {
				if svid, err := w.s.x509.GetX509SVID(); err == nil {
					expires = svid.Certificates[0].NotAfter.UTC().Format(time.RFC3339)
				}
			}
			w.s.log.WithField("svid_expires", expires).Warnf(
				"identity: Workload API unreachable (degraded): serving the current SVID until it expires: "+format, args...)
		}
		return
	}
	w.s.log.Errorf("workloadapi: "+format, args...)
}

// GetX509SVID returns the current default SVID.
func (s *WorkloadSource) GetX509SVID() (*x509svid.SVID, error) {
	svid, err := s.x509.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return svid, nil
}

// GetX509BundleForTrustDomain returns the current bundle for td, own or
// federated.
func (s *WorkloadSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b, err := s.x509.GetX509BundleForTrustDomain(td)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return b, nil
}

// Updated returns a channel that receives a value each time the Workload API
// pushes new SVIDs or bundles.
func (s *WorkloadSource) Updated() <-chan struct{} { return s.updated }

// Close disconnects from the Workload API. Afterwards the source serves
// nothing.
func (s *WorkloadSource) Close() error {
	if err := s.x509.Close(); err != nil {
		return fmt.Errorf("identity: closing workload API source: %w", err)
	}
	return nil
}
