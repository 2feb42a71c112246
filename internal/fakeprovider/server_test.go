package fakeprovider_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

// TestH2C checks that Listen speaks HTTP/2 with prior knowledge, as a
// gateway's pooled upstream client may.
func TestH2C(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protos}}
	resp, err := client.Get(s.URL() + "/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Errorf("got %s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}
	if got := s.Requests()[0].Proto; got != "HTTP/2.0" {
		t.Errorf("recorded proto = %q", got)
	}
}

// TestH2CStreamCut checks that a cut stream is an error over HTTP/2 too.
func TestH2CStreamCut(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protos}}
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"[fake:chunks=4][fake:cut]"}]}`
	resp, err := client.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("read a cut stream without error: %s", got)
	}
	if strings.Contains(string(got), "[DONE]") {
		t.Errorf("cut stream carried [DONE]")
	}
}

func TestRecording(t *testing.T) {
	s := start(t, fakeprovider.Options{RecordLimit: 2})
	for _, p := range []string{"/v1/models", "/v1/nope", "/v1/models/gpt-4o"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+p+"?x=1", nil)
		req.Header.Set("X-Probe", p)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	got := s.Requests()
	if len(got) != 2 || got[0].Path != "/v1/nope" || got[1].Path != "/v1/models/gpt-4o" || got[1].Query != "x=1" || got[1].Header.Get("X-Probe") != "/v1/models/gpt-4o" {
		t.Errorf("recorded = %+v", got)
	}
	if s.RequestCount() != 3 {
		t.Errorf("RequestCount = %d, want 3", s.RequestCount())
	}
	got[0].Header.Set("X-Probe", "changed")
	if s.Requests()[0].Header.Get("X-Probe") != "/v1/nope" {
		t.Error("Requests returned shared headers")
	}
	s.Reset()
	if len(s.Requests()) != 0 || s.RequestCount() != 0 {
		t.Error("Reset kept state")
	}
}

func TestBadRequests(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantBody                 string
	}{
		{"unknown path", "POST", "/v1/completions", `{}`, 404, `"code":"unknown_url"`},
		{"wrong method", "GET", "/v1/chat/completions", ``, 404, `"type":"invalid_request_error"`},
		{"not json", "POST", "/v1/chat/completions", `{`, 400, "could not parse the JSON body"},
		{"trailing data", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]} {}`, 400, "could not parse"},
		{"no model", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 400, `"param":"model"`},
		{"no messages", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, 400, `"param":"messages"`},
		{"bad role", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"robot","content":"x"}]}`, 400, "Invalid value: 'robot'"},
		{"stream_options without stream", "POST", "/v1/chat/completions", `{"model":"gpt-4o","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`, 400, `"param":"stream_options"`},
		{"max_tokens 0", "POST", "/v1/chat/completions", `{"model":"gpt-4o","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, 400, `"param":"max_tokens"`},
		{"tool result without id", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"tool","content":"x"}]}`, 400, "tool_call_id"},
		{"tool_choice without tools", "POST", "/v1/chat/completions", `{"model":"gpt-4o","tool_choice":"required","messages":[{"role":"user","content":"x"}]}`, 400, `"param":"tool_choice"`},
		{"forced unknown tool", "POST", "/v1/chat/completions", `{"model":"gpt-4o","tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}},"messages":[{"role":"user","content":"x"}]}`, 400, "not offered"},
		{"anthropic no max_tokens", "POST", "/v1/messages", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}]}`, 400, "max_tokens: Field required"},
		{"anthropic bad role", "POST", "/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"system","content":"x"}]}`, 400, "messages.0.role"},
		{"anthropic unknown model", "POST", "/v1/messages", `{"model":"claude-9","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, 404, `"type":"not_found_error"`},
		{"embeddings empty input", "POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":""}`, 400, `"param":"input"`},
		{"embeddings too many dims", "POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"x","dimensions":5000}`, 400, `"param":"dimensions"`},
		{"embeddings scenario", "POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":["a","[fake:error=503]"]}`, 503, `"type":"server_error"`},
		{"responses no input", "POST", "/v1/responses", `{"model":"gpt-4o"}`, 400, `"param":"input"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+s.Addr()+tt.path, strings.NewReader(tt.body))
			req.Header.Set("anthropic-version", "2023-06-01")
			if !strings.HasPrefix(tt.path, "/v1/messages") {
				req.Header.Del("anthropic-version")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(got), tt.wantBody) {
				t.Errorf("got %d %s\nwant %d containing %s", resp.StatusCode, got, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	big := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("a", fakeprovider.MaxBodyBytes) + `"}]}`
	resp, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", resp.StatusCode)
	}
}

// TestTLS checks that Options.TLS serves HTTPS with HTTP/2 by ALPN.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	s := start(t, fakeprovider.Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL = %q", s.URL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := client.Get(s.URL() + "/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("proto = %s, want HTTP/2", resp.Proto)
	}
}
