package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
)

// replicaLog is the audit log of one gateway replica, signed with its own
// origin and key.
func replicaLog(t *testing.T, origin string, n int) *testLog {
	t.Helper()
	base := t.TempDir()
	tl := &testLog{dir: filepath.Join(base, "audit"), keyFile: filepath.Join(base, "signing.key"),
		start: time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)}
	var err error
	if tl.vkey, err = audit.GenerateKeyFile(tl.keyFile, origin); err != nil {
		t.Fatal(err)
	}
	if tl.signer, _, err = audit.LoadKeyFile(tl.keyFile); err != nil {
		t.Fatal(err)
	}
	tl.appendRecords(t, 0, n, origin+"-req-")
	return tl
}

func TestAuditVerifySeveralLogs(t *testing.T) {
	a := replicaLog(t, "gw-a.example/audit", 25)
	b := replicaLog(t, "gw-b.example/audit", 12)
	keptA, keptB := a.keep(t), b.keep(t)
	twin := replicaLog(t, "gw-a.example/audit", 3)
	tampered := replicaLog(t, "gw-c.example/audit", 15)
	tampered.editSegment(t, 0, func(lines [][]byte) [][]byte {
		lines[1] = []byte(strings.Replace(string(lines[1]), "llm.invoke", "llm.invokE", 1))
		return lines
	})
	keptC := replicaLog(t, "gw-c.example/audit", 4).keep(t)
	proof := filepath.Join(t.TempDir(), "proof.json")
	out, err := runCLI(t, "", "audit", "prove", a.dir, "--seq", "3")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(proof, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		wantErr  string
		wantOuts []string
	}{
		{"unsigned", []string{a.dir, b.dir}, "", []string{
			"audit log " + a.dir + " (origin gw-a.example/audit) is intact: 25 records",
			"audit log " + b.dir + " (origin gw-b.example/audit) is intact: 12 records",
			"signatures NOT checked", "all 2 audit logs are intact"}},
		{"keys matched by origin", []string{a.dir, b.dir, "--key", b.vkey, "--key", a.vkey}, "", []string{
			"latest: size 25", "latest: size 12", "all 2 audit logs are intact"}},
		{"kept checkpoints matched by origin", []string{a.dir, b.dir, "--key", a.vkey, "--key", b.vkey,
			"--checkpoint", keptB, "--checkpoint", keptA}, "", []string{
			"extends the checkpoint in " + keptA, "extends the checkpoint in " + keptB}},
		{"a key missing", []string{a.dir, b.dir, "--key", a.vkey}, "1 of 2 audit logs are NOT intact", []string{
			"latest: size 25", `no --key is named for its origin "gw-b.example/audit"`}},
		{"one log tampered", []string{a.dir, tampered.dir, b.dir}, "1 of 3 audit logs are NOT intact", []string{
			"audit log " + a.dir + " (origin gw-a.example/audit) is intact",
			"audit log " + tampered.dir + " is NOT intact",
			"audit log " + b.dir + " (origin gw-b.example/audit) is intact"}},
		{"a kept checkpoint that is no checkpoint", []string{a.dir, b.dir, "--key", a.vkey, "--key", b.vkey,
			"--checkpoint", proof}, "--checkpoint " + proof + " is not a signed checkpoint", nil},
		{"a kept checkpoint of no verified log", []string{a.dir, b.dir, "--key", a.vkey, "--key", b.vkey,
			"--checkpoint", keptA, "--checkpoint", keptC}, "--checkpoint " + keptC + ` (origin "gw-c.example/audit") matches none of the logs`, []string{
			"extends the checkpoint in " + keptA}},
		{"two kept checkpoints of one log", []string{a.dir, b.dir, "--key", a.vkey, "--key", b.vkey,
			"--checkpoint", keptA, "--checkpoint", a.storedCheckpoint(t, 0)}, `both of origin "gw-a.example/audit"`, nil},
		{"two logs, one origin", []string{a.dir, twin.dir}, "1 of 2", []string{
			`same origin "gw-a.example/audit" as ` + a.dir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, "", append([]string{"audit", "verify"}, tc.args...)...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got err %v\n%s", err, out)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got err %v, want one containing %q\n%s", err, tc.wantErr, out)
			}
			for _, want := range tc.wantOuts {
				if !strings.Contains(out, want) {
					t.Errorf("output does not contain %q:\n%s", want, out)
				}
			}
		})
	}
}
