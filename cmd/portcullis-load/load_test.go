package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

const apiKey = "sk-load-test"

// target is the fake provider behind mTLS with the SVID files a client needs.
type target struct {
	url                    string
	cert, key, bundle, dir string
}

func startTarget(t *testing.T) target {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString("load.test")
	ca, err := identity.NewDevCA(td, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	srvSVID, err := ca.IssueServer(spiffeid.RequireFromPath(td, "/provider"), nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	src := identity.NewStaticSource(srvSVID, x509bundle.NewSet(ca.Bundle()))
	tlsCfg, err := identity.ServerTLSConfig(src, []spiffeid.TrustDomain{td})
	if err != nil {
		t.Fatal(err)
	}
	quiet := logrus.New()
	quiet.Level = logrus.ErrorLevel
	fp, err := fakeprovider.Listen("127.0.0.1:0", fakeprovider.Options{APIKey: apiKey, TLS: tlsCfg, Logger: quiet, RecordLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })
	dir := t.TempDir()
	client, err := ca.Issue(spiffeid.RequireFromPath(td, "/tenant/acme/app/load"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := identity.WriteSVID(dir, "client", client); err != nil {
		t.Fatal(err)
	}
	if err := identity.WriteBundle(filepath.Join(dir, "bundle.pem"), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	return target{
		url:  "https://" + fp.Addr(),
		cert: filepath.Join(dir, "client.pem"), key: filepath.Join(dir, "client-key.pem"),
		bundle: filepath.Join(dir, "bundle.pem"), dir: dir,
	}
}

func (tg target) args(extra ...string) []string {
	return append([]string{"-target", tg.url, "-cert", tg.cert, "-key", tg.key, "-bundle", tg.bundle, "-api-key", apiKey, "-q"}, extra...)
}

func runJSON(t *testing.T, args []string) Result {
	t.Helper()
	var out, errb bytes.Buffer
	if err := mainErr(append(args, "-json", "-"), &out, &errb); err != nil {
		t.Fatalf("portcullis-load %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("result JSON: %v\n%s", err, out.String())
	}
	return r
}

// TestSmoke drives a few hundred requests in both modes against an
// in-process mTLS target, so the harness cannot rot unnoticed.
func TestSmoke(t *testing.T) {
	tg := startTarget(t)
	tests := []struct {
		name       string
		args       []string
		wantMode   string
		wantEvents float64 // role chunk + N content + finish + usage + [DONE]
	}{
		{"chat", []string{"-n", "300", "-c", "8", "-m", "2"}, "chat", 0},
		{"stream", []string{"-n", "200", "-c", "8", "-m", "2", "-stream", "-events", "20"}, "stream", 24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runJSON(t, tg.args(tt.args...))
			if r.Errors != 0 {
				t.Fatalf("errors = %d (%v, first: %s), want 0", r.Errors, r.ErrorKinds, r.FirstError)
			}
			if want := 300; tt.name == "chat" && r.Requests != want {
				t.Errorf("requests = %d, want %d", r.Requests, want)
			}
			if want := 200; tt.name == "stream" && r.Requests != want {
				t.Errorf("requests = %d, want %d", r.Requests, want)
			}
			if r.Mode != tt.wantMode || r.Proto != "h2" || r.Concurrency != 8 || r.Connections != 2 {
				t.Errorf("mode, proto, c, m = %s %s %d %d, want %s h2 8 2", r.Mode, r.Proto, r.Concurrency, r.Connections, tt.wantMode)
			}
			if r.EventsPerStream != tt.wantEvents {
				t.Errorf("events per stream = %v, want %v", r.EventsPerStream, tt.wantEvents)
			}
			if r.RPS <= 0 || r.Latency.P50 <= 0 || r.Latency.P999 < r.Latency.P50 || r.TTFB.P50 <= 0 || r.TTFB.P50 > r.Latency.P50 {
				t.Errorf("implausible figures: rps %v latency %+v ttfb %+v", r.RPS, r.Latency, r.TTFB)
			}
			if r.BodyBytes < 1000 || r.BodyBytes > 1100 {
				t.Errorf("body bytes = %d, want about 1024", r.BodyBytes)
			}
		})
	}
}

func TestDurationRun(t *testing.T) {
	tg := startTarget(t)
	r := runJSON(t, tg.args("-d", "300ms", "-c", "4", "-m", "1"))
	if r.Errors != 0 || r.Requests == 0 {
		t.Fatalf("requests, errors = %d, %d (%s), want some and none", r.Requests, r.Errors, r.FirstError)
	}
	if r.Seconds < 0.3 || r.Seconds > 5 {
		t.Errorf("seconds = %v, want about 0.3", r.Seconds)
	}
}

func TestErrorsAreReported(t *testing.T) {
	tg := startTarget(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"wrong provider key fails the preflight", []string{"-api-key", "wrong", "-n", "10"}, "status 401"},
		{"unknown model", []string{"-model", "no-such-model", "-n", "10"}, "status 404"},
		{"no HTTP/3 listener", []string{"-proto", "h3", "-n", "10", "-timeout", "300ms"}, "not supported by target"},
		{"unknown protocol", []string{"-proto", "spdy", "-n", "10"}, "unknown protocol"},
		{"missing SVID", []string{"-cert", filepath.Join(tg.dir, "absent.pem"), "-n", "10"}, "client SVID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := mainErr(tg.args(tt.args...), &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestUnsupportedIsTyped(t *testing.T) {
	tg := startTarget(t)
	var out, errb bytes.Buffer
	err := mainErr(tg.args("-proto", "h3", "-n", "1", "-timeout", "300ms"), &out, &errb)
	if !errors.Is(err, errUnsupported) {
		t.Fatalf("error = %v, want errUnsupported", err)
	}
}

func TestPercentiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted on purpose
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Percentiles
	}{
		{"empty", nil, Percentiles{}},
		{"one", ms(7), Percentiles{Mean: 7, P50: 7, P90: 7, P99: 7, P999: 7, Max: 7}},
		{"1..100", ms(hundred...), Percentiles{Mean: 50.5, P50: 50, P90: 90, P99: 99, P999: 100, Max: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentiles(tt.in); got != tt.want {
				t.Errorf("percentiles = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestChatBody(t *testing.T) {
	tests := []struct {
		spec     bodySpec
		contains []string
	}{
		{bodySpec{Model: "m", Bytes: 1024}, []string{`"model":"m"`, "Hello."}},
		{bodySpec{Model: "m", Bytes: 1024, Stream: true, Events: 50}, []string{`"stream":true`, `"include_usage":true`, "[fake:chunks=50]"}},
		{bodySpec{Model: "m", Bytes: 4096}, nil},
	}
	for _, tt := range tests {
		b, err := chatBody(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(b); got < tt.spec.Bytes-8 || got > tt.spec.Bytes+8 {
			t.Errorf("%+v: body is %d bytes, want about %d", tt.spec, got, tt.spec.Bytes)
		}
		if !json.Valid(b) {
			t.Errorf("%+v: body is not JSON", tt.spec)
		}
		for _, c := range tt.contains {
			if !bytes.Contains(b, []byte(c)) {
				t.Errorf("%+v: body lacks %s", tt.spec, c)
			}
		}
	}
}
