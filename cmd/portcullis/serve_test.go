package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevModeAsANewUserWouldRunIt starts `serve --dev`, runs the request the
// banner describes with the PEM files it wrote, and verifies the audit log.
func TestDevModeAsANewUserWouldRunIt(t *testing.T) {
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveFlags{dev: true, dataDir: dataDir, listen: "127.0.0.1:0"}, out)
	}()
	var port string
	re := regexp.MustCompile(`https://localhost:(\d+)/v1/chat/completions`)
	for deadline := time.Now().Add(20 * time.Second); port == ""; {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			port = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no curl command printed; output so far:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	banner := out.String()
	dev := filepath.Join(dataDir, "dev")
	for _, f := range []string{"bundle.pem", "app.pem", "app-key.pem", "agent.pem", "agent-key.pem", "human.pem", "human-key.pem"} {
		if !strings.Contains(banner, dev) {
			t.Errorf("banner does not name the dev directory %s", dev)
		}
		if _, err := os.Stat(filepath.Join(dev, f)); err != nil {
			t.Errorf("dev file %s: %v", f, err)
		}
	}
	for _, flag := range []string{"--cert " + filepath.Join(dev, "app.pem"), "--key " + filepath.Join(dev, "app-key.pem"), "--cacert " + filepath.Join(dev, "bundle.pem")} {
		if !strings.Contains(banner, flag) {
			t.Errorf("curl command lacks %q", flag)
		}
	}

	// What curl does with those flags.
	cert, err := tls.LoadX509KeyPair(filepath.Join(dev, "app.pem"), filepath.Join(dev, "app-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dev, "bundle.pem"))
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("bundle.pem holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := c.Post("https://localhost:"+port+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, Portcullis"}]}`))
	if err != nil {
		t.Fatalf("the printed curl command fails: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello from fake gpt-4o-mini") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	// The printed Messages command, and a token count for the same prompt:
	// claude-sonnet-4-5 is served in the Anthropic format.
	if !strings.Contains(banner, "https://localhost:"+port+"/v1/messages \\\n") {
		t.Errorf("banner lacks the Messages command")
	}
	for _, call := range []struct{ path, body, want string }{
		{"/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"Hello, Portcullis"}]}`, `"text":"Hello from fake claude-sonnet-4-5`},
		{"/v1/messages/count_tokens", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello, Portcullis"}]}`, `"input_tokens":`},
	} {
		req, _ := http.NewRequest("POST", "https://localhost:"+port+call.path, strings.NewReader(call.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", call.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), call.want) {
			t.Fatalf("%s: got %d %s", call.path, resp.StatusCode, body)
		}
	}
	tr.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not shut down")
	}

	// The banner's verify command, the verifier key included.
	auditDir := filepath.Join(dataDir, "audit")
	if !strings.Contains(banner, "audit key --key-file "+auditDir+".signing-key") {
		t.Errorf("banner lacks the verifier key command")
	}
	var kout, vout bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&kout)
	cmd.SetArgs([]string{"audit", "key", "--key-file", auditDir + ".signing-key"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("audit key: %v", err)
	}
	cmd = newRootCmd()
	cmd.SetOut(&vout)
	cmd.SetArgs([]string{"audit", "verify", auditDir, "--key", strings.TrimSpace(kout.String())})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	if !strings.Contains(vout.String(), "signatures verified") {
		t.Errorf("verify did not check the signatures: %q", vout.String())
	}
	// startup, a decision and a completion for each of the three calls, shutdown
	if !strings.Contains(vout.String(), "intact: 8 records") {
		t.Errorf("verify said %q", vout.String())
	}
}

func TestServeRefusesBadConfigBeforeListening(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte("trust_domains: [example.org]\nsvid: {source: files}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := newRootCmd()
	cmd.SetArgs([]string{"serve", "--config", path, "--listen", "127.0.0.1:0"})
	cmd.SetOut(io.Discard)
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "svid.files.cert: required") {
		t.Fatalf("err = %v; want the field named", err)
	}
}

func TestServeNeedsExactlyOneMode(t *testing.T) {
	for _, args := range [][]string{{"serve"}, {"serve", "--dev", "--config", "x.yaml"}} {
		cmd := newRootCmd()
		cmd.SetArgs(args)
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "exactly one of --dev or --config") {
			t.Errorf("%v: err = %v", args, err)
		}
	}
}
