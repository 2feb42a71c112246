package spire

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/spiretest"
)

// TestUpDownScripts runs spire/up.sh and spire/down.sh (make spire-up and
// spire-down): up starts a server and agent and applies entries.yaml; down
// stops exactly the processes up started, never one whose PID merely sits
// in a PID file, and removes the run dir and the state.
func TestUpDownScripts(t *testing.T) {
	bin := spiretest.Binaries(t)
	root, err := spiretest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	portcullis := filepath.Join(t.TempDir(), "portcullis")
	build := exec.Command("go", "build", "-o", portcullis, "./cmd/portcullis")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := t.TempDir()
	env := append(os.Environ(), "PORTCULLIS_SPIRE_BIN="+bin, "PORTCULLIS_CMD="+portcullis, "SPIRE_STATE_DIR="+state)
	script := func(name string) (string, error) {
		cmd := exec.Command(filepath.Join(root, "spire", name))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := script("up.sh")
	if err != nil {
		t.Fatalf("up.sh: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`export SPIFFE_ENDPOINT_SOCKET=unix://(/tmp/pc-spire-[^/]+)/agent/api.sock`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("up.sh printed no SPIFFE_ENDPOINT_SOCKET:\n%s", out)
	}
	runDir := m[1]
	t.Cleanup(func() { _, _ = script("down.sh") }) // if the test fails before down
	for _, want := range []string{
		"spire/entries.yaml -> spiffe://example.org: 3 created, 0 updated, 0 deleted, 0 unchanged",
		"export SPIRE_SERVER_SOCKET=" + runDir + "/server/api.sock",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("up.sh output lacks %q:\n%s", want, out)
		}
	}
	pids := map[string]int{}
	for _, name := range []string{"server", "agent"} {
		pids[name] = readPID(t, filepath.Join(runDir, name+".pid"))
		if !alive(pids[name]) {
			t.Fatalf("%s (pid %d) is not running after up.sh", name, pids[name])
		}
	}
	if again, err := script("up.sh"); err != nil || !strings.Contains(again, "SPIRE is already up in "+runDir) {
		t.Errorf("second up.sh: got %v\n%s", err, again)
	}

	// A process that is not ours, its PID planted in the run dir.
	decoy := exec.Command("sleep", "60")
	if err := decoy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = decoy.Process.Kill(); _ = decoy.Wait() }()
	if err := os.WriteFile(filepath.Join(runDir, "gateway.pid"), []byte(strconv.Itoa(decoy.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err = script("down.sh")
	if err != nil {
		t.Fatalf("down.sh: %v\n%s", err, out)
	}
	for name, pid := range pids {
		if !strings.Contains(out, "stopped "+name+" (pid "+strconv.Itoa(pid)+")") {
			t.Errorf("down.sh did not report stopping %s:\n%s", name, out)
		}
		if alive(pid) {
			t.Errorf("%s (pid %d) still running after down.sh", name, pid)
		}
	}
	if !alive(decoy.Process.Pid) {
		t.Error("down.sh killed a process it did not start")
	}
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Errorf("run dir %s still there after down.sh (%v)", runDir, err)
	}
	if _, err := os.Stat(filepath.Join(state, "dir")); !os.IsNotExist(err) {
		t.Errorf("state file still there after down.sh (%v)", err)
	}
	if out, err := script("down.sh"); err != nil || !strings.Contains(out, "SPIRE is not up") {
		t.Errorf("second down.sh: got %v\n%s", err, out)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
