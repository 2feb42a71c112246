package spire

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/identity"
)

func testLookup(vars map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

var repoVars = testLookup(map[string]string{"PORTCULLIS_ROOT": "/src/portcullis", "PORTCULLIS_UID": "1000"})

func TestParseRepositoryEntriesFile(t *testing.T) {
	f, err := ReadFile("entries.yaml", repoVars)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.TrustDomain.Name(), "example.org"; got != want {
		t.Errorf("trust domain: got %q, want %q", got, want)
	}
	var ids []string
	for _, e := range f.Entries {
		ids = append(ids, e.SPIFFEID.String())
		if got, want := e.ParentID.String(), "spiffe://example.org/host"; got != want {
			t.Errorf("%s parent: got %q, want %q", e.SPIFFEID, got, want)
		}
		if got, want := e.Selectors[0].String(), "unix:uid:1000"; got != want {
			t.Errorf("%s first selector: got %q, want %q", e.SPIFFEID, got, want)
		}
		if !strings.HasPrefix(e.Selectors[1].Value, "path:/src/portcullis/bin/") {
			t.Errorf("%s second selector: got %q, want a path under /src/portcullis/bin", e.SPIFFEID, e.Selectors[1])
		}
	}
	want := []string{
		"spiffe://example.org/portcullis",
		"spiffe://example.org/tenant/acme/app/demo-app",
		"spiffe://example.org/tenant/acme/agent/demo-agent",
	}
	if !slices.Equal(ids, want) {
		t.Errorf("entries: got %v, want %v", ids, want)
	}
	// The templates must be accepted by the gateway's resolver and map the
	// example workloads to their kinds.
	r, err := identity.NewResolver(f.Templates())
	if err != nil {
		t.Fatalf("identity.NewResolver(Templates()): %v", err)
	}
	for _, e := range f.Entries[1:] {
		p, err := r.Resolve(e.SPIFFEID)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", e.SPIFFEID, err)
		}
		if p.Kind != e.Principal.Kind || p.Tenant != "acme" {
			t.Errorf("Resolve(%s): got kind %q tenant %q, want %q acme", e.SPIFFEID, p.Kind, p.Tenant, e.Principal.Kind)
		}
	}
}

func TestParseFields(t *testing.T) {
	const src = `trust_domain: example.org
entries:
  - spiffe_id: spiffe://example.org/a
    parent_id: spiffe://example.org/node/1
    selectors: [unix:uid:1000, "unix:sha256:` + strings64 + `", k8s:ns:default]
    x509_svid_ttl: 90s
    jwt_svid_ttl: 5m
    dns_names: [a.example.org, "*.a.example.org"]
    federates_with: [partner.example]
    hint: first
    portcullis: {kind: agent, tenant: t1}
`
	f, err := Parse("x.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := f.Entries[0]
	checks := []struct{ name, got, want string }{
		{"spiffe_id", e.SPIFFEID.String(), "spiffe://example.org/a"},
		{"parent_id", e.ParentID.String(), "spiffe://example.org/node/1"},
		{"selectors", selString(e.Selectors), "unix:uid:1000 unix:sha256:" + strings64 + " k8s:ns:default"},
		{"x509_svid_ttl", e.X509SVIDTTL.String(), (90 * time.Second).String()},
		{"jwt_svid_ttl", e.JWTSVIDTTL.String(), (5 * time.Minute).String()},
		{"dns_names", strings.Join(e.DNSNames, " "), "a.example.org *.a.example.org"},
		{"federates_with", e.FederatesWith[0].Name(), "partner.example"},
		{"hint", e.Hint, "first"},
		{"kind", string(e.Principal.Kind), "agent"},
		{"tenant", e.Principal.Tenant, "t1"},
		{"line", string(rune('0' + e.Line)), "3"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

const strings64 = "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"

func selString(sels []Selector) string {
	var out []string
	for _, s := range sels {
		out = append(out, s.String())
	}
	return strings.Join(out, " ")
}

func TestParseErrors(t *testing.T) {
	const head = "trust_domain: example.org\nparent_id: spiffe://example.org/host\nentries:\n"
	const sel = "    selectors: [unix:uid:1000]\n"
	tests := []struct {
		name string
		src  string
		want string // the first error, in full
	}{
		{"empty", "", "spire: t.yaml: empty file"},
		{"comments only", "# nothing\n", "spire: t.yaml: empty file"},
		{"bad yaml", "trust_domain: [\n", "spire: t.yaml:1: did not find expected node content"},
		{"two documents", head + "---\nx: 1\n", "spire: t.yaml:4: a second YAML document; the file must hold one"},
		{"not a mapping", "- a\n", "spire: t.yaml:1: the file must be a mapping of keys to values, not a list"},
		{"unknown top key", "trust_domian: example.org\n", `spire: t.yaml:1: unknown key "trust_domian" in the file (known: trust_domain, parent_id, entries)`},
		{"repeated key", "trust_domain: a.org\ntrust_domain: b.org\nentries: []\n", "spire: t.yaml:2: trust_domain is repeated (first at line 1)"},
		{"missing trust domain", "entries: []\n", "spire: t.yaml:1: trust_domain is missing"},
		{"trust domain as URL", "trust_domain: spiffe://example.org\nentries: []\n", `spire: t.yaml:1: trust_domain "spiffe://example.org" is not a trust domain name such as example.org`},
		{"missing entries", "trust_domain: example.org\n", "spire: t.yaml:1: entries is missing (write entries: [] for none)"},
		{"entries not a list", "trust_domain: example.org\nentries: {}\n", "spire: t.yaml:2: entries must be a list of entries, not a mapping"},
		{"unknown entry key", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    ttl: 1h\n", `spire: t.yaml:6: unknown key "ttl" in an entry (known: spiffe_id, parent_id, selectors, x509_svid_ttl, jwt_svid_ttl, dns_names, federates_with, hint, portcullis)`},
		{"missing spiffe_id", head + "  - selectors: [unix:uid:1]\n", "spire: t.yaml:4: spiffe_id is missing"},
		{"missing parent", "trust_domain: example.org\nentries:\n  - spiffe_id: spiffe://example.org/a\n" + sel, "spire: t.yaml:3: parent_id is missing (here or at the top of the file)"},
		{"missing selectors", head + "  - spiffe_id: spiffe://example.org/a\n", "spire: t.yaml:4: selectors is missing"},
		{"empty selectors", head + "  - spiffe_id: spiffe://example.org/a\n    selectors: []\n", "spire: t.yaml:5: selectors is empty: an entry needs at least one"},
		{"other trust domain", head + "  - spiffe_id: spiffe://other.org/a\n" + sel, `spire: t.yaml:4: spiffe_id "spiffe://other.org/a" is not in trust domain "example.org"`},
		{"not an ID", head + "  - spiffe_id: example.org/a\n" + sel, `spire: t.yaml:4: spiffe_id "example.org/a" is not a SPIFFE ID: scheme is missing or invalid`},
		{"no path", head + "  - spiffe_id: spiffe://example.org\n" + sel, `spire: t.yaml:4: spiffe_id "spiffe://example.org" has no path`},
		{"reserved path", head + "  - spiffe_id: spiffe://example.org/spire/agent/x\n" + sel, `spire: t.yaml:4: spiffe_id "spiffe://example.org/spire/agent/x" is in SPIRE's reserved /spire namespace`},
		{"number as ID", head + "  - spiffe_id: 12\n" + sel, `spire: t.yaml:4: spiffe_id must be a string, not int "12" (quote it)`},
		{"selector without value", head + "  - spiffe_id: spiffe://example.org/a\n    selectors: [unix]\n", `spire: t.yaml:5: selector "unix": want type:value, such as unix:uid:1000`},
		{"selector type", head + "  - spiffe_id: spiffe://example.org/a\n    selectors: [Unix:uid:1]\n", `spire: t.yaml:5: selector "Unix:uid:1": type "Unix" must be lower-case letters, digits, - or _`},
		{"uid not a number", head + "  - spiffe_id: spiffe://example.org/a\n    selectors: [unix:uid:root]\n", `spire: t.yaml:5: selector "unix:uid:root": unix:uid wants a number, not "root"`},
		{"relative path", head + "  - spiffe_id: spiffe://example.org/a\n    selectors: [unix:path:bin/app]\n", `spire: t.yaml:5: selector "unix:path:bin/app": unix:path wants an absolute path, not "bin/app"`},
		{"short sha256", head + "  - spiffe_id: spiffe://example.org/a\n    selectors: [unix:sha256:abcd]\n", `spire: t.yaml:5: selector "unix:sha256:abcd": unix:sha256 wants 64 hex digits, not "abcd"`},
		{"unknown unix selector", head + "  - spiffe_id: spiffe://example.org/a\n    selectors: [unix:pid:1]\n", `spire: t.yaml:5: selector "unix:pid:1": unknown unix selector "pid" (uid, user, gid, group, supplementary_gid, supplementary_group, path, sha256)`},
		{"repeated selector", head + "  - spiffe_id: spiffe://example.org/a\n    selectors:\n      - unix:uid:1\n      - unix:uid:1\n", `spire: t.yaml:7: selector "unix:uid:1" is repeated`},
		{"unset variable", head + "  - spiffe_id: spiffe://example.org/a\n    selectors: [\"unix:uid:${NOPE}\"]\n", `spire: t.yaml:5: selector "unix:uid:${NOPE}": variable ${NOPE} is not set`},
		{"unterminated variable", head + "  - spiffe_id: spiffe://example.org/a\n    selectors: [\"unix:uid:${PORTCULLIS_UID\"]\n", `spire: t.yaml:5: selector "unix:uid:${PORTCULLIS_UID": unterminated ${`},
		{"bad variable name", head + "  - spiffe_id: spiffe://example.org/a\n    selectors: [\"unix:uid:${1X}\"]\n", `spire: t.yaml:5: selector "unix:uid:${1X}": bad variable name "1X" (want letters, digits and _)`},
		{"ttl as number", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    x509_svid_ttl: 3600\n", `spire: t.yaml:6: x509_svid_ttl must be a string, not int "3600" (quote it)`},
		{"ttl not a duration", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    x509_svid_ttl: one hour\n", `spire: t.yaml:6: x509_svid_ttl "one hour" is not a duration such as 90s, 5m or 1h`},
		{"ttl fraction", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    jwt_svid_ttl: 1500ms\n", `spire: t.yaml:6: jwt_svid_ttl "1500ms" must be whole seconds`},
		{"ttl negative", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    jwt_svid_ttl: -1m\n", `spire: t.yaml:6: jwt_svid_ttl "-1m" must be positive`},
		{"ttl too long", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    jwt_svid_ttl: 1000000h\n", `spire: t.yaml:6: jwt_svid_ttl "1000000h" is too long`},
		{"dns name", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    dns_names: [a_b.example]\n", `spire: t.yaml:6: dns_names: "a_b.example" has '_' in a label`},
		{"dns wildcard", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    dns_names: [a.*.example]\n", `spire: t.yaml:6: dns_names: "a.*.example" has '*' in a label`},
		{"federates with self", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    federates_with: [example.org]\n", `spire: t.yaml:6: federates_with: "example.org" is this file's own trust domain`},
		{"hint too long", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    hint: " + strings.Repeat("h", 1025) + "\n", "spire: t.yaml:6: hint is longer than 1024 bytes"},
		{"empty hint", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    hint: \"\"\n", "spire: t.yaml:6: hint is empty"},
		{"null hint", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    hint:\n", `spire: t.yaml:6: hint must be a string, not null "" (quote it)`},
		{"bad kind", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    portcullis: {kind: robot, tenant: t}\n", `spire: t.yaml:6: portcullis kind "robot" is not one of human, application, agent`},
		{"missing tenant", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "    portcullis: {kind: agent}\n", "spire: t.yaml:6: portcullis: tenant is missing"},
		{"alias", "trust_domain: &td example.org\nparent_id: *td\nentries: []\n", "spire: t.yaml:2: parent_id: YAML aliases are not supported"},
		{"duplicate entry", head + "  - spiffe_id: spiffe://example.org/a\n" + sel + "  - spiffe_id: spiffe://example.org/a\n    selectors: [unix:uid:2]\n", "spire: t.yaml:6: spiffe://example.org/a with parent spiffe://example.org/host is already the entry at line 4"},
		{"too large", strings.Repeat("#", MaxFileSize+1), "spire: t.yaml: larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.src), repoVars)
			if err == nil {
				t.Fatalf("Parse: got no error, want %q", tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse: got %T %v, want a *ParseError", err, err)
			}
			if got := pe.Error(); got != tt.want {
				t.Errorf("Parse: first error\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	src := "trust_domain: example.org\nparent_id: spiffe://example.org/host\nentries:\n" +
		"  - spiffe_id: spiffe://example.org/a\n    selectors: [unix:uid:x]\n" +
		"  - spiffe_id: spiffe://example.org/b\n    selectors: [unix:uid:1]\n    x509_svid_ttl: soon\n"
	_, err := Parse("t.yaml", []byte(src), nil)
	if err == nil {
		t.Fatal("Parse: got no error")
	}
	got := err.Error()
	want := "spire: t.yaml:5: selector \"unix:uid:x\": unix:uid wants a number, not \"x\"\n" +
		"spire: t.yaml:8: x509_svid_ttl \"soon\" is not a duration such as 90s, 5m or 1h"
	if got != want {
		t.Errorf("Parse error\n got: %s\nwant: %s", got, want)
	}
}

func TestParseCapsErrorCount(t *testing.T) {
	var b strings.Builder
	b.WriteString("trust_domain: example.org\nparent_id: spiffe://example.org/host\nentries:\n")
	for range 50 {
		b.WriteString("  - spiffe_id: spiffe://example.org/a\n    selectors: [bad]\n")
	}
	_, err := Parse("t.yaml", []byte(b.String()), nil)
	lines := strings.Split(err.Error(), "\n")
	if got, want := len(lines), maxErrors+1; got != want {
		t.Fatalf("error lines: got %d, want %d", got, want)
	}
	if got, want := lines[maxErrors], "spire: t.yaml:45: too many errors"; got != want {
		t.Errorf("last line: got %q, want %q", got, want)
	}
}

func TestExpand(t *testing.T) {
	lookup := testLookup(map[string]string{"A": "x", "B_2": "y", "EMPTY": ""})
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "x"},
		{in: "a${A}b${B_2}c", want: "axbyc"},
		{in: "$A ${A}", want: "$A x"},
		{in: "${EMPTY}z", want: "z"},
		{in: "${A", err: "unterminated ${"},
		{in: "${}", err: `bad variable name "" (want letters, digits and _)`},
		{in: "${A-B}", err: `bad variable name "A-B" (want letters, digits and _)`},
		{in: "${C}", err: "variable ${C} is not set"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, lookup)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("expand(%q): got error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q): got %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := expand("${A}", nil); err == nil {
		t.Error("expand with nil lookup: got no error")
	}
}

func TestEntryIDStableAndOwned(t *testing.T) {
	src := "trust_domain: example.org\nentries:\n" +
		"  - {spiffe_id: spiffe://example.org/a, parent_id: spiffe://example.org/n1, selectors: [unix:uid:1]}\n" +
		"  - {spiffe_id: spiffe://example.org/a, parent_id: spiffe://example.org/n2, selectors: [unix:uid:1]}\n"
	f, err := Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := f.Entries[0].EntryID(), f.Entries[1].EntryID()
	if a == b {
		t.Errorf("entries with different parents share ID %s", a)
	}
	// Changing anything but the SPIFFE ID and parent keeps the ID.
	f2, err := Parse("t.yaml", []byte(strings.Replace(src, "unix:uid:1]", "unix:uid:2]", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f2.Entries[0].EntryID(); got != a {
		t.Errorf("EntryID after a selector change: got %s, want %s", got, a)
	}
	for _, id := range []string{a, b} {
		if !Owned(id) || len(id) != len(OwnedPrefix)+24 {
			t.Errorf("EntryID %q: want %q and 24 hex digits", id, OwnedPrefix)
		}
	}
	if Owned("0f1e2d3c-uuid") {
		t.Error("Owned(a SPIRE-generated ID) = true")
	}
}

func TestReadFileErrors(t *testing.T) {
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.yaml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile(missing): got %v, want os.ErrNotExist", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+10), 0o644); err != nil {
		t.Fatal(err)
	}
	var pe *ParseError
	if _, err := ReadFile(big, nil); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "larger than") {
		t.Errorf("ReadFile(big): got %v, want a size error", err)
	}
}
