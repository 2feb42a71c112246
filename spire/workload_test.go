package spire

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/portcullis-dev/portcullis/internal/spiretest"
)

// An entries file that names this test binary (by uid and path, from
// variables) gives it an X.509-SVID and JWT-SVIDs from the real agent, and
// nothing from the other entry.
const selfEntries = `trust_domain: example.org
parent_id: spiffe://example.org/host
entries:
  - spiffe_id: spiffe://example.org/tenant/acme/app/self
    selectors: ["unix:uid:${UID}", "unix:path:${EXE}"]
    x509_svid_ttl: 2m
    jwt_svid_ttl: 90s
    dns_names: [self.example.org]
    portcullis: {kind: application, tenant: acme}
  - spiffe_id: spiffe://example.org/tenant/acme/agent/other
    selectors: ["unix:uid:${UID}", "unix:path:/usr/bin/other"]
`

func TestAppliedEntryGivesWorkloadSVIDs(t *testing.T) {
	s := spiretest.Start(t, spiretest.Options{})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("self.yaml", []byte(selfEntries), testLookup(map[string]string{
		"UID": fmt.Sprint(os.Getuid()), "EXE": exe,
	}))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := Dial(s.ServerSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	applied := time.Now()
	if _, err := Apply(ctx, conn, f, Options{}); err != nil {
		t.Fatal(err)
	}
	want := f.Entries[0].SPIFFEID
	addr := workloadapi.WithAddr(s.WorkloadAddr())

	// X.509: exactly our SVID, with the entry's DNS name and TTL, chaining
	// to the trust domain's bundle.
	s.WaitX509SVID(t, 30*time.Second)
	t.Logf("entry reached the agent and the workload in %s", time.Since(applied).Round(time.Millisecond))
	svids, err := workloadapi.FetchX509SVIDs(ctx, addr)
	if err != nil {
		t.Fatalf("FetchX509SVIDs: %v", err)
	}
	if len(svids) != 1 || svids[0].ID != want {
		var got []string
		for _, s := range svids {
			got = append(got, s.ID.String())
		}
		t.Fatalf("FetchX509SVIDs: got %v, want only %s", got, want)
	}
	svid := svids[0]
	leaf := svid.Certificates[0]
	if !slices.Equal(leaf.DNSNames, []string{"self.example.org"}) {
		t.Errorf("DNS names: got %v, want [self.example.org]", leaf.DNSNames)
	}
	if ttl := time.Until(leaf.NotAfter); ttl > 2*time.Minute || ttl < 90*time.Second {
		t.Errorf("X.509-SVID expires in %s, want about 2m (x509_svid_ttl)", ttl)
	}
	bundles, err := workloadapi.FetchX509Bundles(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := x509svid.Verify(svid.Certificates, bundles)
	if err != nil || id != want {
		t.Errorf("x509svid.Verify: got %s, %v; want %s", id, err, want)
	}

	// JWT: validated against the agent's JWT bundles, for our audience only.
	const aud = "portcullis-gateway"
	token, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: aud}, addr)
	if err != nil {
		t.Fatalf("FetchJWTSVID: %v", err)
	}
	jwtBundles, err := workloadapi.FetchJWTBundles(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jwtsvid.ParseAndValidate(token.Marshal(), jwtBundles, []string{aud})
	if err != nil {
		t.Fatalf("ParseAndValidate: %v", err)
	}
	if got.ID != want {
		t.Errorf("JWT-SVID subject: got %s, want %s", got.ID, want)
	}
	if ttl := time.Until(got.Expiry); ttl > 90*time.Second || ttl < 60*time.Second {
		t.Errorf("JWT-SVID expires in %s, want about 90s (jwt_svid_ttl)", ttl)
	}

	refused := map[string]string{
		"wrong audience": "",
		"tampered":       tamper(token.Marshal()),
		"unsigned":       unsigned(token.Marshal()),
	}
	for name, tok := range refused {
		audience := []string{aud}
		if name == "wrong audience" {
			tok, audience = token.Marshal(), []string{"someone-else"}
		}
		if _, err := jwtsvid.ParseAndValidate(tok, jwtBundles, audience); err == nil {
			t.Errorf("%s JWT-SVID: ParseAndValidate accepted it", name)
		}
	}
}

// tamper changes the payload of a compact JWS (a different subject) and
// keeps the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p := []byte(parts[1])
	if p[5] == 'A' {
		p[5] = 'B'
	} else {
		p[5] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}

// unsigned drops the signature.
func unsigned(tok string) string {
	parts := strings.Split(tok, ".")
	return parts[0] + "." + parts[1] + "."
}
