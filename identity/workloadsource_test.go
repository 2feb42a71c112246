package identity_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/spiffetest"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestWorkloadSourceRotation(t *testing.T) {
	ca := spiffetest.NewCA(t, "example.org")
	partner := spiffetest.NewCA(t, "partner.example")
	api := spiffetest.NewWorkloadAPI(t)
	first := ca.SVID(t, "spiffe://example.org/portcullis")
	api.SetX509SVID(first, ca.Bundle(), partner.Bundle())

	src, err := identity.NewWorkloadSource(t.Context(), api.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	if got := currentLeaf(t, src); !bytes.Equal(got, first.Certificates[0].Raw) {
		t.Fatal("first SVID is not the one the Workload API served")
	}
	for _, c := range []*spiffetest.CA{ca, partner} {
		if b, err := src.GetX509BundleForTrustDomain(c.TrustDomain()); err != nil || !b.Equal(c.Bundle()) {
			t.Errorf("bundle for %s = %v, %v", c.TrustDomain(), b, err)
		}
	}

	// The agent pushes a new SVID on the open stream.
	next := ca.SVID(t, "spiffe://example.org/portcullis")
	api.SetX509SVID(next, ca.Bundle())
	select {
	case <-src.Updated():
	case <-time.After(5 * time.Second):
		t.Fatal("no update after rotation")
	}
	waitFor(t, "rotated SVID", func() bool { return bytes.Equal(currentLeaf(t, src), next.Certificates[0].Raw) })
	if _, err := src.GetX509BundleForTrustDomain(partner.TrustDomain()); err == nil {
		t.Error("federated bundle still served after the agent dropped it")
	}
	if n := api.Streams(); n != 1 {
		t.Errorf("opened %d streams, want 1 (rotation on the same stream)", n)
	}

	// The agent goes away: the current SVID keeps being served.
	api.Stop()
	time.Sleep(50 * time.Millisecond)
	if !bytes.Equal(currentLeaf(t, src), next.Certificates[0].Raw) {
		t.Error("SVID lost when the Workload API went away")
	}

	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.GetX509SVID(); err == nil {
		t.Error("GetX509SVID after Close: want error")
	}
}

func TestWorkloadSourceTimeout(t *testing.T) {
	api := spiffetest.NewWorkloadAPI(t) // no SVID: an unregistered workload

	start := time.Now()
	_, err := identity.NewWorkloadSource(t.Context(), api.Addr(), 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "within 300ms") || !strings.Contains(err.Error(), api.Addr()) {
		t.Fatalf("NewWorkloadSource = %v, want a timeout error naming the address", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v to time out after 300ms", d)
	}

	// Cancelled by the caller: not reported as a timeout.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := identity.NewWorkloadSource(ctx, api.Addr(), time.Minute); err == nil || strings.Contains(err.Error(), "within") {
		t.Errorf("cancelled NewWorkloadSource = %v, want a non-timeout error", err)
	}
}

func TestWorkloadSourceAddress(t *testing.T) {
	ca := spiffetest.NewCA(t, "example.org")
	api := spiffetest.NewWorkloadAPI(t)
	api.SetX509SVID(ca.SVID(t, "spiffe://example.org/p"), ca.Bundle())

	// A bare path is taken as a unix socket.
	src, err := identity.NewWorkloadSource(t.Context(), strings.TrimPrefix(api.Addr(), "unix://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()

	for _, addr := range []string{"tcp://nohost", "http://x/y"} {
		if _, err := identity.NewWorkloadSource(t.Context(), addr, time.Second); err == nil {
			t.Errorf("address %q: want error", addr)
		}
	}
	if _, err := identity.NewWorkloadSource(t.Context(), api.Addr(), 0); err == nil {
		t.Error("zero timeout: want error")
	}
}

// TestWorkloadSourceTLS serves mTLS from a Workload API source, the way the
// gateway runs under SPIRE.
func TestWorkloadSourceTLS(t *testing.T) {
	ca := spiffetest.NewCA(t, "example.org")
	api := spiffetest.NewWorkloadAPI(t)
	api.SetX509SVID(ca.SVID(t, "spiffe://example.org/portcullis"), ca.Bundle())
	src, err := identity.NewWorkloadSource(t.Context(), api.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	serverCfg, err := identity.ServerTLSConfig(src, []spiffeid.TrustDomain{ca.TrustDomain()})
	if err != nil {
		t.Fatal(err)
	}
	client := identity.ClientTLSConfig(identity.NewStaticSource(ca.SVID(t, "spiffe://example.org/tenant/a/app/b"), ca.BundleSet()), ca.TrustDomain())
	id, err := handshake(t, serverCfg, client)
	if err != nil || id.String() != "spiffe://example.org/tenant/a/app/b" {
		t.Fatalf("handshake = %v, %v", id, err)
	}
}
