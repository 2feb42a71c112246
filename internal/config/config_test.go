package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// valid returns a minimal valid configuration document using files in dir.
func valid(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"cert.pem", "key.pem", "bundle.pem", "key.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := `
trust_domains: [example.org]
svid:
  source: files
  files: {cert: DIR/cert.pem, key: DIR/key.pem, bundle: DIR/bundle.pem}
principals:
  - {match: "spiffe://example.org/tenant/{tenant}/app/{name}", kind: application}
providers:
  - name: p
    base_url: http://127.0.0.1:9/v1
    api_key_file: DIR/key.txt
    models: [{name: m}]
audit: {dir: DIR/audit}
`
	return strings.ReplaceAll(doc, "DIR", dir), dir
}

func TestParseValidAndDefaults(t *testing.T) {
	doc, _ := valid(t)
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Listen != DefaultListen || c.Limits.MaxBodyBytes != DefaultMaxBodyBytes || c.Providers[0].Format != "openai" || c.Log.Format != "json" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if k, err := c.Providers[0].APIKey(); err != nil || k != "x" {
		t.Errorf("APIKey = %q, %v", k, err)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(string) string
		field string
		msg   string
	}{
		{"unknown field", func(d string) string { return d + "bogus: 1\n" }, "", "field bogus not found"},
		{"bad listen", func(d string) string { return d + "listen: nonsense\n" }, "listen", "host:port"},
		{"no trust domains", func(d string) string {
			return strings.Replace(d, "trust_domains: [example.org]", "trust_domains: []", 1)
		}, "trust_domains", "at least one"},
		{"trust domain with scheme", func(d string) string {
			return strings.Replace(d, "trust_domains: [example.org]", `trust_domains: ["spiffe://example.org"]`, 1)
		}, "trust_domains[0]", "not a trust domain"},
		{"bad svid source", func(d string) string { return strings.Replace(d, "source: files", "source: magic", 1) }, "svid.source", "workload_api or files"},
		{"missing cert file", func(d string) string { return strings.Replace(d, "/cert.pem", "/nope.pem", 1) }, "svid.files.cert", "cannot read"},
		{"bad kind", func(d string) string { return strings.Replace(d, "kind: application", "kind: robot", 1) }, "principals[0].kind", "one of human"},
		{"template without tenant", func(d string) string {
			return strings.Replace(d, "tenant/{tenant}/app", "apps", 1)
		}, "principals[0].tenant", "required"},
		{"bad base url", func(d string) string { return strings.Replace(d, "http://127.0.0.1:9/v1", "ftp://x", 1) }, "providers[0].base_url", "absolute http"},
		{"env key not set", func(d string) string {
			i := strings.Index(d, "    api_key_file:")
			j := strings.Index(d[i:], "\n")
			return d[:i] + "    api_key_env: PORTCULLIS_TEST_UNSET_VAR" + d[i+j:]
		}, "providers[0].api_key_env", "PORTCULLIS_TEST_UNSET_VAR is not set"},
		{"no models", func(d string) string { return strings.Replace(d, "models: [{name: m}]", "models: []", 1) }, "providers[0].models", "at least one"},
		{"duplicate model", func(d string) string { return strings.Replace(d, "[{name: m}]", "[{name: m}, {name: m}]", 1) }, "providers[0].models[1].name", "already served"},
		{"unsupported format", func(d string) string {
			return strings.Replace(d, "    base_url:", "    format: grpc\n    base_url:", 1)
		}, "providers[0].format", "not supported"},
		{"no audit dir", func(d string) string { return strings.Replace(d, "audit: {dir: ", "audit: {digest_key_file: ", 1) }, "audit.dir", "refuses to run"},
		{"bad log level", func(d string) string { return d + "log: {level: loud}\n" }, "log.level", "one of debug"},
		{"empty file", func(string) string { return "" }, "", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := valid(t)
			_, err := Parse([]byte(tt.edit(doc)))
			if err == nil {
				t.Fatal("Parse accepted a bad configuration")
			}
			if tt.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Fatalf("err = %v; want a FieldError for %s", err, tt.field)
				}
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q; want it to mention %q", err, tt.msg)
			}
		})
	}
}

func TestExampleConfigParses(t *testing.T) {
	b, err := os.ReadFile("../../examples/config/portcullis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example points at files that exist only on a real host; check the
	// document's shape strictly, then validate with those paths swapped.
	doc, dir := valid(t)
	_ = doc
	s := string(b)
	s = strings.NewReplacer(
		"examples/config/svid/gateway.pem", filepath.Join(dir, "cert.pem"),
		"examples/config/svid/gateway-key.pem", filepath.Join(dir, "key.pem"),
		"examples/config/svid/bundle.pem", filepath.Join(dir, "bundle.pem"),
		"/etc/portcullis/vllm.key", filepath.Join(dir, "key.txt"),
	).Replace(s)
	t.Setenv("OPENAI_API_KEY", "sk-test")
	t.Setenv("MCP_TOOLS_TOKEN", "mcp-test")
	c, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("example config does not parse: %v", err)
	}
	if len(c.Providers) != 2 || len(c.Principals) != 4 {
		t.Errorf("example parsed to %d providers, %d principals", len(c.Providers), len(c.Principals))
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("listen: 1\n"))
	f.Add([]byte("providers: [{name: a, models: [{name: b}]}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil && (len(c.TrustDomains) == 0 || c.Audit.Dir == "" || len(c.Providers) == 0) {
			t.Fatalf("accepted an incomplete configuration: %+v", c)
		}
	})
}
