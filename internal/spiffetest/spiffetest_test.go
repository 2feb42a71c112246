package spiffetest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestCASVIDs(t *testing.T) {
	ca := NewCA(t, "example.org")
	const id = "spiffe://example.org/tenant/a/app/b"
	tests := []struct {
		name    string
		opts    []Option
		wantErr string // from x509svid.Verify
	}{
		{"default", nil, ""},
		{"ttl", []Option{TTL(time.Minute)}, ""},
		{"dns", []Option{DNSNames("localhost", "127.0.0.1")}, ""},
		{"expired", []Option{Expired()}, "expired"},
		{"no URI", []Option{NoURI()}, "no URI SAN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svid := ca.SVID(t, id, tt.opts...)
			got, _, err := x509svid.Verify(svid.Certificates, ca.BundleSet())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Verify = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != id || svid.ID != got {
				t.Fatalf("Verify = %v, %v (svid.ID %v); want %s", got, err, svid.ID, id)
			}
		})
	}
	if other := NewCA(t, "example.org"); other.Certificate().Equal(ca.Certificate()) {
		t.Error("two CAs share a certificate")
	}
}

func TestWritePEM(t *testing.T) {
	ca := NewCA(t, "example.org")
	dir := t.TempDir()
	svid := ca.SVID(t, "spiffe://example.org/x")
	certPath, keyPath := WritePEM(t, dir, "x", svid)
	got, err := x509svid.Load(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Certificates[0].Equal(svid.Certificates[0]) {
		t.Error("loaded a different certificate")
	}
	bundlePath := filepath.Join(dir, "bundle.pem")
	WriteBundlePEM(t, bundlePath, ca.Bundle())
	b, err := x509bundle.Load(ca.TrustDomain(), bundlePath)
	if err != nil || !b.Equal(ca.Bundle()) {
		t.Errorf("bundle = %v, %v", b, err)
	}
}

// TestWorkloadAPIProtocol talks to the fake with a raw gRPC client, to check
// the agent behaviour that go-spiffe's client relies on.
func TestWorkloadAPIProtocol(t *testing.T) {
	api := NewWorkloadAPI(t)
	conn, err := grpc.NewClient(api.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := workload.NewSpiffeWorkloadAPIClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()

	recvCode := func(ctx context.Context) codes.Code {
		stream, err := client.FetchX509SVID(ctx, &workload.X509SVIDRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		return status.Code(err)
	}
	if got := recvCode(ctx); got != codes.InvalidArgument {
		t.Errorf("without the security header: code %v, want InvalidArgument", got)
	}
	withHeader := metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")
	if got := recvCode(withHeader); got != codes.PermissionDenied {
		t.Errorf("before an SVID is set: code %v, want PermissionDenied", got)
	}

	ca := NewCA(t, "example.org")
	partner := NewCA(t, "partner.example")
	first := ca.SVID(t, "spiffe://example.org/x")
	api.SetX509SVID(first, ca.Bundle(), partner.Bundle())
	stream, err := client.FetchX509SVID(withHeader, &workload.X509SVIDRequest{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(want *x509svid.SVID) {
		t.Helper()
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Svids) != 1 {
			t.Fatalf("%d SVIDs, want 1", len(resp.Svids))
		}
		got, err := x509svid.ParseRaw(resp.Svids[0].X509Svid, resp.Svids[0].X509SvidKey)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Certificates[0].Equal(want.Certificates[0]) || resp.Svids[0].SpiffeId != want.ID.String() {
			t.Errorf("got SVID %s, want %s", resp.Svids[0].SpiffeId, want.ID)
		}
		if _, ok := resp.FederatedBundles[partner.TrustDomain().IDString()]; !ok {
			t.Errorf("federated bundles %v lack partner.example", resp.FederatedBundles)
		}
	}
	check(first)
	second := ca.SVID(t, "spiffe://example.org/y")
	api.SetX509SVID(second, ca.Bundle(), partner.Bundle())
	check(second) // pushed on the same stream
	if n := api.Streams(); n != 3 {
		t.Errorf("Streams() = %d, want 3", n)
	}

	bundles, err := client.FetchX509Bundles(withHeader, &workload.X509BundlesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := bundles.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Bundles) != 2 {
		t.Errorf("FetchX509Bundles: %d bundles, want 2", len(resp.Bundles))
	}
}
