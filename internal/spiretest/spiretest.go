package spiretest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Options configure Start.
type Options struct {
	// TrustDomain defaults to example.org.
	TrustDomain string
}

// SPIRE is a running server and agent.
type SPIRE struct {
	TrustDomain spiffeid.TrustDomain
	// NodeID is the agent's stable node ID (from its join token), the
	// parent of workload entries.
	NodeID spiffeid.ID
	// Dir holds configs, data, sockets and the logs server.log and agent.log.
	Dir string
	// ServerSocket is the server's admin API socket.
	ServerSocket string
	// WorkloadSocket is the agent's Workload API socket.
	WorkloadSocket string
	// StartupTime is how long Start took from launching the server to a
	// healthy agent.
	StartupTime time.Duration

	bin          string
	server       *proc
	agent        *proc
	agentStarted bool
}

// Start starts a SPIRE server and an agent attested to it with a join
// token, and stops them in t.Cleanup. It skips the test when the binaries
// are missing (see the package documentation) and fails it when SPIRE does
// not come up within a minute.
func Start(t testing.TB, opts Options) *SPIRE {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := binDir(t, root)
	if opts.TrustDomain == "" {
		opts.TrustDomain = "example.org"
	}
	td, err := spiffeid.TrustDomainFromString(opts.TrustDomain)
	if err != nil {
		t.Fatalf("spiretest: trust domain: %v", err)
	}
	// Not t.TempDir(): its path holds the test name and can push the
	// sockets past the 108-byte limit.
	dir, err := os.MkdirTemp("", "pcs-")
	if err != nil {
		t.Fatalf("spiretest: %v", err)
	}
	s := &SPIRE{
		TrustDomain:    td,
		NodeID:         spiffeid.RequireFromPath(td, "/host"),
		Dir:            dir,
		ServerSocket:   filepath.Join(dir, "server", "api.sock"),
		WorkloadSocket: filepath.Join(dir, "agent", "api.sock"),
		bin:            bin,
	}
	t.Cleanup(func() { s.cleanup(t) })
	// 0755 so that workloads running as another uid can reach the socket.
	for _, d := range []string{dir, filepath.Join(dir, "agent")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("spiretest: %v", err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("spiretest: %v", err)
		}
	}
	for _, d := range []string{"server/data", "agent/data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatalf("spiretest: %v", err)
		}
	}

	began := time.Now()
	if err := s.startServer(root); err != nil {
		t.Fatal(err)
	}
	bundle, err := run(s.serverBin(), "bundle", "show", "-socketPath", s.ServerSocket)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "agent", "bootstrap.crt"), []byte(bundle), 0o644); err != nil {
		t.Fatalf("spiretest: %v", err)
	}
	out, err := run(s.serverBin(), "token", "generate", "-socketPath", s.ServerSocket,
		"-spiffeID", s.NodeID.String(), "-ttl", "600")
	if err != nil {
		t.Fatal(err)
	}
	token, ok := strings.CutPrefix(strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), "Token: ")
	if !ok || token == "" {
		t.Fatalf("spiretest: no token in the output of token generate: %q", out)
	}
	if err := s.startAgent("-joinToken", token); err != nil {
		t.Fatal(err)
	}
	s.StartupTime = time.Since(began)
	t.Logf("spiretest: SPIRE %s up in %s (dir %s)", td.IDString(), s.StartupTime.Round(time.Millisecond), dir)
	return s
}

// WorkloadAddr is the Workload API address for go-spiffe's
// workloadapi.WithAddr and for SPIFFE_ENDPOINT_SOCKET.
func (s *SPIRE) WorkloadAddr() string { return "unix://" + s.WorkloadSocket }

// ID returns the SPIFFE ID with the given path in the trust domain.
func (s *SPIRE) ID(path string) spiffeid.ID { return spiffeid.RequireFromPath(s.TrustDomain, path) }

func (s *SPIRE) serverBin() string { return filepath.Join(s.bin, "spire-server") }
func (s *SPIRE) agentBin() string  { return filepath.Join(s.bin, "spire-agent") }

// startServer renders the configs and starts the server on a free port,
// trying again on another port if the first was taken meanwhile.
func (s *SPIRE) startServer(root string) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		for _, name := range []string{"server.conf", "agent.conf"} {
			if err = s.render(root, name, port); err != nil {
				return err
			}
		}
		s.server, err = startProc("spire-server", filepath.Join(s.Dir, "server.log"), s.serverBin(),
			"run", "-config", filepath.Join(s.Dir, "server.conf"))
		if err != nil {
			return err
		}
		err = s.server.waitFor("healthy", time.Minute, func() error {
			_, err := run(s.serverBin(), "healthcheck", "-socketPath", s.ServerSocket)
			return err
		})
		if err == nil {
			return nil
		}
		s.server.stop()
		if !strings.Contains(s.server.tail(20), "address already in use") {
			return err
		}
	}
	return err
}

func (s *SPIRE) startAgent(args ...string) error {
	args = append([]string{"run", "-config", filepath.Join(s.Dir, "agent.conf")}, args...)
	p, err := startProc("spire-agent", filepath.Join(s.Dir, "agent.log"), s.agentBin(), args...)
	if err != nil {
		return err
	}
	s.agent = p
	s.agentStarted = true
	return p.waitFor("healthy", time.Minute, func() error {
		_, err := run(s.agentBin(), "healthcheck", "-socketPath", s.WorkloadSocket)
		return err
	})
}

// StopAgent stops the agent; workloads keep the SVIDs they hold.
func (s *SPIRE) StopAgent(t testing.TB) {
	t.Helper()
	if s.agent != nil {
		s.agent.stop()
	}
}

// RestartAgent starts the agent again after StopAgent. It comes back with
// the SVID it keeps on disk, so it needs no new join token.
func (s *SPIRE) RestartAgent(t testing.TB) {
	t.Helper()
	if s.agent != nil && !s.agent.exited() {
		t.Fatal("spiretest: RestartAgent: the agent is still running; StopAgent first")
	}
	if err := s.startAgent(); err != nil {
		t.Fatal(err)
	}
}

func (s *SPIRE) render(root, name string, port int) error {
	tmpl, err := os.ReadFile(filepath.Join(root, "spire", name))
	if err != nil {
		return fmt.Errorf("spiretest: config template: %w", err)
	}
	out := strings.NewReplacer(
		"@RUN_DIR@", s.Dir,
		"@TRUST_DOMAIN@", s.TrustDomain.Name(),
		"@SERVER_PORT@", strconv.Itoa(port),
	).Replace(string(tmpl))
	if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(out), 0o644); err != nil {
		return fmt.Errorf("spiretest: %w", err)
	}
	return nil
}

func (s *SPIRE) cleanup(t testing.TB) {
	for _, p := range []*proc{s.agent, s.server} {
		if p == nil {
			continue
		}
		p.stop()
		if t.Failed() {
			t.Logf("spiretest: %s log ends:\n%s", p.name, p.tail(30))
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		t.Errorf("spiretest: removing %s: %v", s.Dir, err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("spiretest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
