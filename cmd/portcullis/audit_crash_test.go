package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
)

// gatewayProc is a real `portcullis serve --dev` process.
type gatewayProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

func startGateway(t *testing.T, bin, dataDir, addr string) *gatewayProc {
	t.Helper()
	p := &gatewayProc{out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "serve", "--dev", "--data-dir", dataDir, "--listen", addr)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p.out.String(), "/v1/chat/completions"); {
		select {
		case err := <-p.done:
			t.Fatalf("gateway exited: %v\n%s", err, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready:\n%s", p.out.String())
		}
	}
	return p
}

// stop ends the process with sig and waits for it.
func (p *gatewayProc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway did not stop on %v", sig)
	}
}

func devClient(t *testing.T, dataDir string) *http.Client {
	t.Helper()
	dev := filepath.Join(dataDir, "dev")
	cert, err := tls.LoadX509KeyPair(filepath.Join(dev, "app.pem"), filepath.Join(dev, "app-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(filepath.Join(dev, "bundle.pem"))
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no CA in bundle.pem")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "localhost"},
		ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSIGKILLUnderLoadLosesNoAcknowledgedRecord builds the real binary, runs
// `serve --dev`, drives concurrent chat requests over mTLS with the dev app
// SVID, SIGKILLs the gateway mid-load, restarts it (recovery), and checks
// that every request whose response arrived has its decision record in the
// log, that `audit verify` passes with the signed checkpoints, and that the
// checkpoint served at /v1/audit/checkpoint verifies the log.
func TestSIGKILLUnderLoadLosesNoAcknowledgedRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "portcullis")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := filepath.Join(tmp, "data")
	addr := freeAddr(t)
	gw := startGateway(t, bin, dataDir, addr)
	client := devClient(t, dataDir)
	url := "https://" + addr

	// Load: writers post until the gateway dies; an id is acknowledged
	// when its 200 response arrived.
	var mu sync.Mutex
	var acked []string
	var failures int
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := client.Post(url+"/v1/chat/completions", "application/json",
					strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"crash test"}]}`))
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 {
					mu.Lock()
					acked = append(acked, resp.Header.Get("X-Request-Id"))
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	gw.stop(t, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond) // responses already on the wire still arrive
	cancel()
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 20 {
		t.Fatalf("only %d requests acknowledged before the kill (%d failures); output:\n%s", n, failures, gw.out.String())
	}
	t.Logf("%d requests acknowledged before SIGKILL, %d failed", n, failures)

	// Restart: recovery, a checkpoint signed before serving, then a clean
	// stop signs a final checkpoint.
	client.Transport.(*http.Transport).CloseIdleConnections()
	gw = startGateway(t, bin, dataDir, addr)
	first := getCheckpoint(t, client, url)
	gw.stop(t, syscall.SIGTERM)

	auditDir := filepath.Join(dataDir, "audit")
	have := map[string]bool{}
	if err := audit.ScanRecords(auditDir, func(r audit.RawRecord) error {
		var ev audit.Event
		if err := json.Unmarshal(r.Line, &ev); err != nil {
			return err
		}
		if ev.Type == "decision" {
			have[ev.RequestID] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if !have[id] {
			t.Errorf("acknowledged request %s has no decision record", id)
		}
	}
	// The restart's first checkpoint, signed before it served, ends with its
	// startup record (the last record but the shutdown record), so it also
	// covers a recovery record written before it.
	var starts []uint64
	if err := audit.ScanRecords(auditDir, func(r audit.RawRecord) error {
		if bytes.Contains(r.Line, []byte(`"type":"startup"`)) {
			starts = append(starts, r.Seq)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(starts) != 2 || first.Size != starts[1]+1 {
		t.Errorf("first checkpoint after the restart has size %d; startup records at %v", first.Size, starts)
	}

	vkey := strings.TrimSpace(runBin(t, 0, bin, "audit", "key", "--key-file", auditDir+".signing-key"))
	out := runBin(t, 0, bin, "audit", "verify", auditDir, "--key", vkey)
	if !strings.Contains(out, "signatures verified") {
		t.Errorf("verify: %s", out)
	}

	// A third start serves the checkpoint signed at the last shutdown; an
	// auditor keeps it and verifies the log against it.
	gw = startGateway(t, bin, dataDir, addr)
	ckpt := getCheckpointNote(t, client, url)
	gw.stop(t, syscall.SIGTERM)
	kept := filepath.Join(tmp, "kept.checkpoint")
	if err := os.WriteFile(kept, ckpt, 0o600); err != nil {
		t.Fatal(err)
	}
	runBin(t, 0, bin, "audit", "verify", auditDir, "--key", vkey, "--checkpoint", kept)
	// The kept checkpoint is worthless with another key: exit status 1.
	runBin(t, 1, bin, "audit", "verify", auditDir, "--key", strings.Replace(vkey, "+", "x+", 1), "--checkpoint", kept)
}

// runBin runs the binary and checks its exit status.
// getCheckpointNote fetches the signed checkpoint the gateway serves.
func getCheckpointNote(t *testing.T, client *http.Client, url string) []byte {
	t.Helper()
	resp, err := client.Get(url + "/v1/audit/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	ckpt, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("GET /v1/audit/checkpoint: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), ckpt)
	}
	return ckpt
}

// getCheckpoint fetches and parses the served checkpoint (signature not
// checked here; audit verify does that).
func getCheckpoint(t *testing.T, client *http.Client, url string) audit.Checkpoint {
	t.Helper()
	body, _, ok := strings.Cut(string(getCheckpointNote(t, client, url)), "\n\n")
	if !ok {
		t.Fatal("served checkpoint is not a signed note")
	}
	c, err := audit.ParseCheckpoint(body + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func runBin(t *testing.T, wantStatus int, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	status := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		status = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if status != wantStatus {
		t.Fatalf("%s: exit status %d, want %d\n%s", strings.Join(args, " "), status, wantStatus, out.String())
	}
	return out.String()
}
