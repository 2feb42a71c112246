package spiretest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/spiretest"
)

// TestSpireApplyCommand runs `portcullis spire apply` as an operator would,
// against a real SPIRE server: create, no-op rerun, dry run, update, stale,
// prune, and a refused file.
func TestSpireApplyCommand(t *testing.T) {
	s := spiretest.Start(t, spiretest.Options{})
	bin := portcullisBin(t)
	file := filepath.Join(t.TempDir(), "entries.yaml")
	apply := func(t *testing.T, src string, args ...string) (string, error) {
		t.Helper()
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, append([]string{"spire", "apply", "--file", file}, args...)...)
		// --socket defaults to $SPIRE_SERVER_SOCKET.
		cmd.Env = append(os.Environ(), "SPIRE_SERVER_SOCKET="+s.ServerSocket, "APP_UID=1234")
		out, err := cmd.CombinedOutput()
		return strings.ReplaceAll(string(out), file, "entries.yaml"), err
	}
	const head = "trust_domain: example.org\nparent_id: spiffe://example.org/host\nentries:\n"
	const a = "  - {spiffe_id: spiffe://example.org/a, selectors: [\"unix:uid:${APP_UID}\"], x509_svid_ttl: 1h}\n"
	const b = "  - {spiffe_id: spiffe://example.org/b, selectors: [unix:uid:2]}\n"
	aChanged := strings.Replace(a, "1h", "5m", 1)

	steps := []struct {
		name    string
		src     string
		args    []string
		wantErr bool
		want    []string // substrings of the output, in order
	}{
		{"create", head + a + b, nil, false, []string{
			"create spiffe://example.org/a (entries.yaml:4, entry portcullis-",
			"create spiffe://example.org/b (entries.yaml:5, entry portcullis-",
			"entries.yaml -> spiffe://example.org: 2 created, 0 updated, 0 deleted, 0 unchanged\n"}},
		{"rerun", head + a + b, nil, false, []string{
			"entries.yaml -> spiffe://example.org: no changes (2 entries up to date)\n"}},
		{"dry run", head + aChanged + b, []string{"--dry-run"}, false, []string{
			"would update spiffe://example.org/a (entries.yaml:4",
			"x509_svid_ttl: 1h0m0s -> 5m0s",
			"dry run, would create 0, update 1, delete 0; 1 unchanged\n"}},
		{"update", head + aChanged + b, nil, false, []string{
			"update spiffe://example.org/a (entries.yaml:4",
			"1 updated, 0 deleted, 1 unchanged\n"}},
		{"stale without prune", head + aChanged, nil, false, []string{
			"stale  spiffe://example.org/b (entry portcullis-",
			"no changes (1 entry up to date)\n"}},
		{"prune", head + aChanged, []string{"--prune"}, false, []string{
			"delete spiffe://example.org/b (entry portcullis-",
			"0 created, 0 updated, 1 deleted, 1 unchanged\n"}},
		{"refused file", head + "  - {spiffe_id: spiffe://example.org/c, selectors: [unix:uid:x]}\n", nil, true, []string{
			`portcullis: spire: entries.yaml:4: selector "unix:uid:x": unix:uid wants a number, not "x"`}},
	}
	for _, st := range steps {
		out, err := apply(t, st.src, st.args...)
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: got error %v, want error %v\n%s", st.name, err, st.wantErr, out)
		}
		rest := out
		for _, w := range st.want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Fatalf("%s: output lacks %q (in order):\n%s", st.name, w, out)
			}
			rest = rest[i+len(w):]
		}
	}
	var ids []string
	for _, e := range s.Entries(t) {
		ids = append(ids, e.SPIFFEIDString())
	}
	if strings.Join(ids, " ") != "spiffe://example.org/host spiffe://example.org/a" &&
		strings.Join(ids, " ") != "spiffe://example.org/a spiffe://example.org/host" {
		t.Errorf("entries at the end: got %v, want the node entry and a", ids)
	}
}
