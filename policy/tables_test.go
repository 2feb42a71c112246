package policy

import (
	"context"
	"strings"
	"testing"
)

// TestTablesRefused: a table rule that could not be evaluated once per load
// makes the bundle fail to load, with the rule named.
func TestTablesRefused(t *testing.T) {
	decision := "package portcullis\n\ndecision := {\"allow\": data.portcullis.tables.ok}\n"
	tests := []struct {
		name, tables, data, want string
	}{
		{"reads input", "ok if input.x", "", "reads input"},
		{"reads input through a rule", "ok if data.portcullis.helper\n", "", "reads input"},
		{"non-deterministic builtin", "ok if time.now_ns() > 0", "", "non-deterministic"},
		{"function", "f(x) := x\n\nok := true", "", "function"},
		{"evaluation error", "ok := 1 / 0", "", "divide by zero"},
		{"conflict with data", "ok := true", `{"portcullis": {"tables": {"ok": false}}}`, "defined both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "p.rego", decision+"\nhelper if input.y\n")
			writeFile(t, dir, "tables.rego", "package portcullis.tables\n\n"+tt.tables+"\n")
			if tt.data != "" {
				writeFile(t, dir, "data.json", tt.data)
			}
			_, err := New(context.Background(), Options{BundleDir: dir})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestTablesAllowed: a table rule that only reads data loads, and the
// decision reads its value.
func TestTablesAllowed(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.rego", "package portcullis\n\ndecision := {\"allow\": data.portcullis.tables.ok, \"reasons\": [data.portcullis.tables.why]}\n")
	writeFile(t, dir, "tables.rego", "package portcullis.tables\n\nok := count(data.xs) == 2\n\nwhy := concat(\",\", data.xs)\n")
	writeFile(t, dir, "data.json", `{"xs": ["a", "b"]}`)
	e := newEngine(t, Options{BundleDir: dir, CacheSize: -1})
	d, err := e.Decide(context.Background(), llm("human", "acme", "gpt-4o"))
	if err != nil || !d.Allow || len(d.Reasons) != 1 || d.Reasons[0] != "a,b" {
		t.Fatalf("got %+v, %v; want an allow with reason a,b", d, err)
	}
}
