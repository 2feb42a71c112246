package spire

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/spiretest"
)

// applyFile parses src and applies it to the server of s.
func applyFile(t *testing.T, s *spiretest.SPIRE, src string, opts Options) (*Result, string, error) {
	t.Helper()
	f, err := Parse("entries.yaml", []byte(src), nil)
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
	res, err := Apply(ctx, conn, f, opts)
	var buf bytes.Buffer
	if res != nil {
		if werr := res.Report(&buf); werr != nil {
			t.Fatal(werr)
		}
	}
	return res, buf.String(), err
}

// shown returns the server's workload entries as spire-server's own CLI
// lists them, one line each: "id spiffe_id parent selectors x509ttl jwtttl
// dns hint", sorted. The node entry of the agent's join token is left out;
// nodeEntryKept checks it separately.
func shown(t *testing.T, s *spiretest.SPIRE) []string {
	t.Helper()
	var out []string
	for _, e := range s.Entries(t) {
		if strings.HasPrefix(e.ParentID.Path, "/spire/agent/") {
			continue
		}
		var sels []string
		for _, sel := range e.Selectors {
			sels = append(sels, sel.Type+":"+sel.Value)
		}
		slices.Sort(sels)
		out = append(out, fmt.Sprintf("%s %s %s [%s] %d %d [%s] %q", e.ID, e.SPIFFEIDString(),
			"spiffe://"+e.ParentID.TrustDomain+e.ParentID.Path, strings.Join(sels, " "),
			e.X509SVIDTTL, e.JWTSVIDTTL, strings.Join(e.DNSNames, " "), e.Hint))
	}
	slices.Sort(out)
	return out
}

const v1 = `trust_domain: example.org
parent_id: spiffe://example.org/host
entries:
  - spiffe_id: spiffe://example.org/a
    selectors: [unix:uid:1001, "unix:path:/opt/a"]
    x509_svid_ttl: 10m
    jwt_svid_ttl: 2m
    dns_names: [a.example.org, a.internal]
    hint: a
  - spiffe_id: spiffe://example.org/b
    selectors: [unix:uid:1002]
  - spiffe_id: spiffe://example.org/c
    selectors: [unix:uid:1003]
    x509_svid_ttl: 1h
`

// v2 changes a's TTL and selectors, drops c and adds d.
const v2 = `trust_domain: example.org
parent_id: spiffe://example.org/host
entries:
  - spiffe_id: spiffe://example.org/a
    selectors: [unix:uid:1001, "unix:path:/opt/a2"]
    x509_svid_ttl: 1m
    jwt_svid_ttl: 2m
    dns_names: [a.example.org, a.internal]
    hint: a
  - spiffe_id: spiffe://example.org/b
    selectors: [unix:uid:1002]
  - spiffe_id: spiffe://example.org/d
    selectors: [unix:uid:1004]
`

func TestApplyAgainstSPIRE(t *testing.T) {
	s := spiretest.Start(t, spiretest.Options{})
	// An entry made by someone else: Apply must never touch it.
	manual := s.CreateEntry(t, spiretest.Entry{SPIFFEID: "spiffe://example.org/manual", Selectors: []string{"unix:uid:2000"}})

	t.Run("create", func(t *testing.T) {
		res, out, err := applyFile(t, s, v1, Options{Prune: true})
		if err != nil {
			t.Fatalf("Apply: %v\n%s", err, out)
		}
		if got, want := res.Count(Create), 3; got != want {
			t.Errorf("created: got %d, want %d\n%s", got, want, out)
		}
		if !strings.HasSuffix(out, "3 created, 0 updated, 0 deleted, 0 unchanged\n") {
			t.Errorf("report:\n%s", out)
		}
		f, _ := Parse("entries.yaml", []byte(v1), nil)
		a, b, c := f.Entries[0].EntryID(), f.Entries[1].EntryID(), f.Entries[2].EntryID()
		got := shown(t, s)
		want := []string{
			manual + ` spiffe://example.org/manual spiffe://example.org/host [unix:uid:2000] 0 0 [] ""`,
			a + ` spiffe://example.org/a spiffe://example.org/host [unix:path:/opt/a unix:uid:1001] 600 120 [a.example.org a.internal] "a"`,
			b + ` spiffe://example.org/b spiffe://example.org/host [unix:uid:1002] 0 0 [] ""`,
			c + ` spiffe://example.org/c spiffe://example.org/host [unix:uid:1003] 3600 0 [] ""`,
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("entry show after create:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
		}
	})

	t.Run("rerun changes nothing", func(t *testing.T) {
		before := shown(t, s)
		res, out, err := applyFile(t, s, v1, Options{Prune: true})
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if res.Changed() || res.Unchanged != 3 {
			t.Errorf("second Apply: got changes %v, unchanged %d; want none and 3", res.Changes, res.Unchanged)
		}
		if want := "entries.yaml -> spiffe://example.org: no changes (3 entries up to date)\n"; out != want {
			t.Errorf("report: got %q, want %q", out, want)
		}
		if after := shown(t, s); !slices.Equal(after, before) {
			t.Errorf("entries changed on a no-op run:\n%v\n%v", before, after)
		}
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		before := shown(t, s)
		res, out, err := applyFile(t, s, v2, Options{Prune: true, DryRun: true})
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if res.Count(Create) != 1 || res.Count(Update) != 1 || res.Count(Delete) != 1 {
			t.Errorf("dry run plan: got %v", res.Changes)
		}
		if !strings.Contains(out, "would delete spiffe://example.org/c") ||
			!strings.HasSuffix(out, "dry run, would create 1, update 1, delete 1; 1 unchanged\n") {
			t.Errorf("dry run report:\n%s", out)
		}
		if after := shown(t, s); !slices.Equal(after, before) {
			t.Errorf("a dry run changed entries:\n%v\n%v", before, after)
		}
	})

	t.Run("update without prune keeps stale", func(t *testing.T) {
		res, out, err := applyFile(t, s, v2, Options{})
		if err != nil {
			t.Fatalf("Apply: %v\n%s", err, out)
		}
		if res.Count(Create) != 1 || res.Count(Update) != 1 || res.Count(Stale) != 1 || res.Count(Delete) != 0 {
			t.Errorf("changes: got %+v", res.Changes)
		}
		for _, want := range []string{
			"update spiffe://example.org/a (entries.yaml:4, entry portcullis-",
			"         selectors: [unix:path:/opt/a unix:uid:1001] -> [unix:path:/opt/a2 unix:uid:1001]\n",
			"         x509_svid_ttl: 10m0s -> 1m0s\n",
			"create spiffe://example.org/d (entries.yaml:12, entry portcullis-",
			"stale  spiffe://example.org/c (entry portcullis-",
			"1 created, 1 updated, 0 deleted, 1 unchanged\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("report lacks %q:\n%s", want, out)
			}
		}
		if n := len(shown(t, s)); n != 5 {
			t.Errorf("entries after update without prune: got %d, want 5 (manual, a, b, c, d)", n)
		}
	})

	t.Run("prune deletes only owned", func(t *testing.T) {
		res, out, err := applyFile(t, s, v2, Options{Prune: true})
		if err != nil {
			t.Fatalf("Apply: %v\n%s", err, out)
		}
		if res.Count(Delete) != 1 || res.Changes[0].SPIFFEID != "spiffe://example.org/c" {
			t.Errorf("changes: got %+v", res.Changes)
		}
		var ids []string
		for _, e := range s.Entries(t) {
			ids = append(ids, e.SPIFFEIDString())
		}
		slices.Sort(ids)
		want := []string{"spiffe://example.org/a", "spiffe://example.org/b", "spiffe://example.org/d",
			"spiffe://example.org/host", // the agent's node entry, from its join token
			"spiffe://example.org/manual"}
		if !slices.Equal(ids, want) {
			t.Errorf("entries after prune: got %v, want %v", ids, want)
		}
		res, out, err = applyFile(t, s, v2, Options{Prune: true})
		if err != nil || res.Changed() {
			t.Errorf("rerun after prune: got %v, %v\n%s", res.Changes, err, out)
		}
	})

	t.Run("entry deleted by hand is recreated", func(t *testing.T) {
		f, _ := Parse("entries.yaml", []byte(v2), nil)
		b := f.Entries[1].EntryID()
		s.DeleteEntry(t, b)
		res, out, err := applyFile(t, s, v2, Options{Prune: true})
		if err != nil || res.Count(Create) != 1 || res.Changes[0].EntryID != b {
			t.Errorf("Apply after deleting b by hand: got %+v, %v\n%s", res.Changes, err, out)
		}
	})

	t.Run("clash with an entry it does not own", func(t *testing.T) {
		clash := v2 + "  - spiffe_id: spiffe://example.org/manual\n    selectors: [unix:uid:2000]\n"
		before := shown(t, s)
		_, _, err := applyFile(t, s, clash, Options{Prune: true})
		if err == nil || !strings.Contains(err.Error(), "entries.yaml:14: spiffe://example.org/manual: SPIRE already has entry "+manual) {
			t.Errorf("Apply with a clash: got %v, want an error naming line 14 and entry %s", err, manual)
		}
		if after := shown(t, s); !slices.Equal(after, before) {
			t.Errorf("a refused Apply changed entries")
		}
	})

	t.Run("wrong trust domain", func(t *testing.T) {
		other := strings.ReplaceAll(v2, "example.org", "other.test")
		_, _, err := applyFile(t, s, other, Options{})
		if err == nil || !strings.Contains(err.Error(), `is for trust domain "other.test", but the server is "example.org"`) {
			t.Errorf("Apply to the wrong trust domain: got %v", err)
		}
	})
}
