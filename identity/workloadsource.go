package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
	x509 *workloadapi.X509Source
}

// NewWorkloadSource connects to the Workload API at socketAddr ("unix:///path",
// a bare absolute path, or "" for $SPIFFE_ENDPOINT_SOCKET) and blocks until the
// first X.509-SVID arrives. It fails with a clear error if none arrives within
// timeout (which must be positive), which is what happens when no agent is
// listening or this workload is not registered. ctx can cancel the wait
// earlier; the source itself lives until Close.
func NewWorkloadSource(ctx context.Context, socketAddr string, timeout time.Duration) (*WorkloadSource, error) {
	if timeout <= 0 {
		return nil, errors.New("identity: workload API source: timeout must be positive")
	}
	if strings.HasPrefix(socketAddr, "/") {
		socketAddr = "unix://" + socketAddr
	}
	var opts []workloadapi.X509SourceOption
	where := "$SPIFFE_ENDPOINT_SOCKET"
	if socketAddr != "" {
		if err := workloadapi.ValidateAddress(socketAddr); err != nil {
			return nil, fmt.Errorf("identity: workload API address %q: %w", socketAddr, err)
		}
		opts = append(opts, workloadapi.WithClientOptions(workloadapi.WithAddr(socketAddr)))
		where = socketAddr
	}

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
	return &WorkloadSource{x509: src}, nil
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
func (s *WorkloadSource) Updated() <-chan struct{} { return s.x509.Updated() }

// Close disconnects from the Workload API. Afterwards the source serves
// nothing.
func (s *WorkloadSource) Close() error {
	if err := s.x509.Close(); err != nil {
		return fmt.Errorf("identity: closing workload API source: %w", err)
	}
	return nil
}
