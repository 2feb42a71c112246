package main

import (
	"strings"
	"testing"
)

// TestAuditExportEmptyWindow: --since after --until selects nothing by
// construction, so it is refused rather than printing nothing.
func TestAuditExportEmptyWindow(t *testing.T) {
	tl := newTestLog(t, 3)
	for _, tc := range []struct {
		name, since, until, wantErr string
	}{
		{"since after until", "2026-03-14T00:10:00Z", "2026-03-14T00:05:00Z", "--since 2026-03-14T00:10:00Z is after --until 2026-03-14T00:05:00Z"},
		{"since equals until", "2026-03-14T00:01:00Z", "2026-03-14T00:01:00Z", ""},
		{"since before until", "2026-03-14T00:01:00Z", "2026-03-14T00:02:00Z", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCLI(t, "", "audit", "export", tl.dir, "--since", tc.since, "--until", tc.until)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want error %q", err, tc.wantErr)
			}
		})
	}
}
