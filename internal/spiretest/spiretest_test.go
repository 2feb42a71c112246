package spiretest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

func TestStartCreateEntryFetchRestart(t *testing.T) {
	s := Start(t, Options{})
	if len(s.WorkloadSocket) >= 108 || len(s.ServerSocket) >= 108 {
		t.Errorf("socket paths too long for unix sockets: %s, %s", s.WorkloadSocket, s.ServerSocket)
	}
	id := s.ID("/test/self")
	entryID := s.CreateEntry(t, Entry{
		SPIFFEID:    id.String(),
		Selectors:   SelfSelectors(t),
		X509SVIDTTL: 2 * time.Minute,
		Hint:        "self",
	})
	found := false
	for _, e := range s.Entries(t) {
		if e.ID == entryID {
			found = true
			if got := e.SPIFFEIDString(); got != id.String() {
				t.Errorf("entry show: got SPIFFE ID %s, want %s", got, id)
			}
			if e.X509SVIDTTL != 120 || e.Hint != "self" {
				t.Errorf("entry show: got ttl %d hint %q, want 120 and self", e.X509SVIDTTL, e.Hint)
			}
		}
	}
	if !found {
		t.Fatalf("entry %s not in entry show", entryID)
	}

	began := time.Now()
	svid := s.WaitX509SVID(t, 30*time.Second)
	t.Logf("new entry reached the workload in %s", time.Since(began).Round(time.Millisecond))
	if svid.ID != id {
		t.Fatalf("FetchX509SVID: got %s, want %s", svid.ID, id)
	}
	if ttl := time.Until(svid.Certificates[0].NotAfter); ttl > 2*time.Minute || ttl < 90*time.Second {
		t.Errorf("SVID expires in %s, want about 2m", ttl)
	}

	// A stopped agent answers nobody; a restarted one serves again without
	// a new join token.
	s.StopAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(s.WorkloadAddr())); err == nil {
		t.Fatal("FetchX509SVID with the agent stopped: got no error")
	}
	s.RestartAgent(t)
	if again := s.WaitX509SVID(t, 30*time.Second); again.ID != id {
		t.Fatalf("after restart: got %s, want %s", again.ID, id)
	}
	log, err := os.ReadFile(s.Dir + "/agent.log")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "SVID loaded") {
		t.Errorf("restarted agent did not reuse its SVID; log:\n%s", log)
	}
}
