package spire

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestReportGolden(t *testing.T) {
	changes := []Change{
		{Action: Stale, EntryID: "portcullis-000000000000000000000003", SPIFFEID: "spiffe://example.org/old"},
		{Action: Delete, EntryID: "portcullis-000000000000000000000004", SPIFFEID: "spiffe://example.org/gone"},
		{Action: Update, EntryID: "portcullis-000000000000000000000001", SPIFFEID: "spiffe://example.org/portcullis", Line: 14,
			Fields: []string{"x509_svid_ttl: 1h0m0s -> 1m0s", "selectors: [unix:uid:0] -> [unix:path:/bin/x unix:uid:0]"}},
		{Action: Create, EntryID: "portcullis-000000000000000000000002", SPIFFEID: "spiffe://example.org/tenant/acme/app/demo-app", Line: 24},
	}
	tests := []struct {
		name string
		res  Result
	}{
		{"changes", Result{File: "entries.yaml", TrustDomain: "example.org", Changes: changes, Unchanged: 2}},
		{"dry-run", Result{File: "entries.yaml", TrustDomain: "example.org", Changes: changes, Unchanged: 2, DryRun: true}},
		{"no-changes", Result{File: "entries.yaml", TrustDomain: "example.org", Unchanged: 3}},
		{"only-stale", Result{File: "entries.yaml", TrustDomain: "example.org", Changes: changes[:1], Unchanged: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.res.Report(&buf); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "report-"+tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("Report:\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
