package spiretest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
	"github.com/portcullis-dev/portcullis/internal/spiretest"
	"github.com/portcullis-dev/portcullis/spire"
)

// stack is SPIRE, the real portcullis binary serving from a config with the
// workload_api SVID source, a fake provider, and two workload drivers (copies
// of this test binary), each registered by its own path.
type stack struct {
	spire      *spiretest.SPIRE
	partner    *spiretest.SPIRE // partner.test, federated with example.org
	entries    *spire.File
	bin        string // folder of the gateway and workload binaries
	gatewayBin string
	addr       string
	auditDir   string
	gwLog      string
	gw         *exec.Cmd
	gwDone     chan error
}

// The stack's entries: short X.509 TTLs for the gateway and the app, so
// that they rotate within seconds. The gateway federates with partner.test,
// so its agent gives it that trust domain's bundle.
const stackEntries = `trust_domain: example.org
parent_id: spiffe://example.org/host
entries:
  - spiffe_id: spiffe://example.org/portcullis
    selectors: ["unix:uid:${UID}", "unix:path:${BIN}/portcullis"]
    x509_svid_ttl: 20s
    dns_names: [localhost]
    federates_with: [partner.test]
  - spiffe_id: spiffe://example.org/tenant/acme/app/demo-app
    selectors: ["unix:uid:${UID}", "unix:path:${BIN}/example-app"]
    x509_svid_ttl: 20s
    portcullis: {kind: application, tenant: acme}
  - spiffe_id: spiffe://example.org/tenant/acme/agent/demo-agent
    selectors: ["unix:uid:${UID}", "unix:path:${BIN}/example-agent"]
    portcullis: {kind: agent, tenant: acme}
  - spiffe_id: spiffe://example.org/tenant/acme/human/alice
    selectors: ["unix:uid:${UID}", "unix:path:${BIN}/example-human"]
    jwt_svid_ttl: 2m
    portcullis: {kind: human, tenant: acme}
`

func startStack(t *testing.T) *stack {
	t.Helper()
	s := spiretest.Start(t, spiretest.Options{})
	partner := spiretest.Start(t, spiretest.Options{TrustDomain: "partner.test"})
	spiretest.Federate(t, s, partner)
	st := &stack{spire: s, partner: partner, bin: filepath.Join(s.Dir, "bin")}
	if err := os.MkdirAll(st.bin, 0o755); err != nil {
		t.Fatal(err)
	}

	// The gateway: the real binary. The workloads: copies of this test
	// binary. Each at its own path, so each matches only its own entry.
	st.gatewayBin = filepath.Join(st.bin, "portcullis")
	copyFile(t, portcullisBin(t), st.gatewayBin)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"example-app", "example-agent", "example-human", "partner-app"} {
		copyFile(t, self, filepath.Join(st.bin, name))
	}

	st.entries, err = spire.Parse("stack.yaml", []byte(stackEntries), func(name string) (string, bool) {
		switch name {
		case "UID":
			return fmt.Sprint(os.Getuid()), true
		case "BIN":
			return st.bin, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := spire.Dial(s.ServerSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := spire.Apply(ctx, conn, st.entries, spire.Options{Prune: true}); err != nil {
		t.Fatal(err)
	}

	// A caller in partner.test, trusting example.org through federation.
	partner.CreateEntry(t, spiretest.Entry{
		SPIFFEID:      partnerID,
		Selectors:     []string{fmt.Sprintf("unix:uid:%d", os.Getuid()), "unix:path:" + filepath.Join(st.bin, "partner-app")},
		FederatesWith: []string{"example.org"},
	})

	fake, err := fakeprovider.Listen("127.0.0.1:0", fakeprovider.Options{APIKey: "sk-spiretest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	st.addr = freeAddr(t)
	st.auditDir = filepath.Join(s.Dir, "audit")
	var principals strings.Builder
	for _, tmpl := range st.entries.Templates() {
		fmt.Fprintf(&principals, "  - {match: %q, kind: %s, tenant: %s}\n", tmpl.Pattern, tmpl.Kind, tmpl.Tenant)
	}
	principals.WriteString("  - {match: \"spiffe://partner.test/tenant/{tenant}/app/{name}\", kind: application}\n")
	cfg := fmt.Sprintf(`listen: %s
disable_http3: true
trust_domains: [example.org, partner.test]
svid:
  source: workload_api
  workload_api: {socket: %q, timeout: 30s}
principals:
%sproviders:
  - name: fake
    base_url: %s
    api_key_env: PORTCULLIS_SPIRETEST_PROVIDER_KEY
    models: [{name: gpt-4o-mini}, {name: gpt-4o}, {name: o3-mini}]
user_context: {workload_api: true, audience: portcullis}
policy: {bundle: %s}
audit: {dir: %s}
log: {format: text, level: info}
`, st.addr, s.WorkloadAddr(), principals.String(), fake.URL(), policyDir(t), st.auditDir)
	cfgPath := filepath.Join(s.Dir, "portcullis.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	st.startGateway(t, cfgPath)
	return st
}

func (st *stack) startGateway(t *testing.T, cfgPath string) {
	t.Helper()
	st.gwLog = filepath.Join(st.spire.Dir, "gateway.log")
	logf, err := os.Create(st.gwLog)
	if err != nil {
		t.Fatal(err)
	}
	st.gw = exec.Command(st.gatewayBin, "serve", "--config", cfgPath)
	st.gw.Env = append(os.Environ(), "PORTCULLIS_SPIRETEST_PROVIDER_KEY=sk-spiretest")
	st.gw.Stdout, st.gw.Stderr = logf, logf
	st.gw.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := st.gw.Start(); err != nil {
		t.Fatal(err)
	}
	st.gwDone = make(chan error, 1)
	go func() { st.gwDone <- st.gw.Wait(); logf.Close() }()
	t.Cleanup(func() {
		st.stopGateway(t)
		if t.Failed() {
			t.Logf("gateway log ends:\n%s", tail(st.gwLog, 40))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", st.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-st.gwDone:
			st.gwDone <- err
			t.Fatalf("gateway exited (%v); its log:\n%s", err, tail(st.gwLog, 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not listening on %s after 60s; its log:\n%s", st.addr, tail(st.gwLog, 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopGateway sends SIGTERM and waits for a clean exit.
func (st *stack) stopGateway(t *testing.T) {
	if st.gw == nil || st.gw.Process == nil {
		return
	}
	_ = st.gw.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-st.gwDone:
		if err != nil {
			t.Errorf("gateway exit: %v", err)
		}
	case <-time.After(40 * time.Second):
		_ = st.gw.Process.Kill()
		<-st.gwDone
		t.Error("gateway did not stop within 40s of SIGTERM")
	}
	st.gw = nil
}

// driver is a running workload driver.
type driver struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	errs *strings.Builder
}

func (st *stack) startDriver(t *testing.T, name string) *driver {
	t.Helper()
	return st.startDriverOn(t, name, st.spire.WorkloadAddr())
}

// startDriverOn starts a driver that takes its identity from the Workload
// API at addr, maybe another SPIRE's.
func (st *stack) startDriverOn(t *testing.T, name, addr string) *driver {
	t.Helper()
	cmd := exec.Command(filepath.Join(st.bin, name))
	cmd.Env = append(os.Environ(),
		driverEnv+"=1",
		"SPIFFE_ENDPOINT_SOCKET="+addr,
		driverGatewayID+"=spiffe://example.org/portcullis",
		driverBaseURL+"=https://"+st.addr+"/v1/",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &driver{name: name, cmd: cmd, in: in, out: bufio.NewScanner(out), errs: &strings.Builder{}}
	cmd.Stderr = d.errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fmt.Fprintln(d.in, "quit")
		d.in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return d
}

// do sends one command and returns the reply.
func (d *driver) do(t *testing.T, command string) reply {
	t.Helper()
	if _, err := fmt.Fprintln(d.in, command); err != nil {
		t.Fatalf("%s: %v (stderr: %s)", d.name, err, d.errs)
	}
	got := make(chan bool, 1)
	go func() { got <- d.out.Scan() }()
	select {
	case ok := <-got:
		if !ok {
			t.Fatalf("%s exited (stderr: %s)", d.name, d.errs)
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("%s: no reply to %q within 45s (stderr: %s)", d.name, command, d.errs)
	}
	var r reply
	if err := json.Unmarshal(d.out.Bytes(), &r); err != nil {
		t.Fatalf("%s: reply %q: %v", d.name, d.out.Text(), err)
	}
	return r
}

// policyDir is the suite's policy bundle, testdata/policy, as an absolute
// path.
func policyDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "policy"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
