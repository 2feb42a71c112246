package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/policy"
)

func TestReadiness(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	ca, err := identity.NewDevCA(td, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	id := spiffeid.RequireFromString("spiffe://example.org/portcullis")
	engine, err := policy.New(context.Background(), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(filepath.Join(t.TempDir(), "audit"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alog.Close()

	long, _ := ca.Issue(id, time.Hour)
	// An hour-long SVID issued 59 minutes ago has about a minute left, inside
	// the five-minute margin: not renewed in time, so not ready.
	past, err := identity.NewDevCA(td, func() time.Time { return time.Now().Add(-59 * time.Minute) })
	if err != nil {
		t.Fatal(err)
	}
	short, _ := past.Issue(id, time.Hour)

	readyz := func(g *gateway) (int, map[string]checkResult) {
		rec := httptest.NewRecorder()
		g.opsHandler(prometheus.NewRegistry()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var out struct {
			Checks map[string]checkResult `json:"checks"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		return rec.Code, out.Checks
	}
	g := &gateway{source: identity.NewStaticSource(long, x509bundle.NewSet(ca.Bundle())), engine: engine, audit: alog}
	if code, checks := readyz(g); code != 200 {
		t.Fatalf("healthy gateway not ready: %d %v", code, checks)
	}
	g.source = identity.NewStaticSource(short, x509bundle.NewSet(ca.Bundle()))
	if code, checks := readyz(g); code != 503 || checks["svid"].OK {
		t.Errorf("SVID about to expire unrenewed: got %d %v, want 503 with svid failing", code, checks)
	}
	g.source = identity.NewStaticSource(long, x509bundle.NewSet(ca.Bundle()))
	alog.Close()
	if code, checks := readyz(g); code != 503 || checks["audit"].OK {
		t.Errorf("closed audit log: got %d %v, want 503 with audit failing", code, checks)
	}
}

func TestOpsPprofIsOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		g := &gateway{cfg: &config.Config{Ops: config.Ops{Pprof: on}}}
		rec := httptest.NewRecorder()
		g.opsHandler(prometheus.NewRegistry()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/goroutine?debug=1", nil))
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; rec.Code != want {
			t.Errorf("ops.pprof=%v: GET /debug/pprof/goroutine = %d, want %d", on, rec.Code, want)
		}
	}
}
