package spiretest

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// Entry is a workload entry for CreateEntry.
type Entry struct {
	SPIFFEID string
	// ParentID defaults to the agent's node ID.
	ParentID  string
	Selectors []string
	// X509SVIDTTL and JWTSVIDTTL are rounded to seconds; zero means the
	// server's default (1h and 5m in spire/server.conf).
	X509SVIDTTL time.Duration
	JWTSVIDTTL  time.Duration
	DNSNames    []string
	Hint        string
	// FederatesWith names trust domains (example.org) whose bundles the
	// workload receives; see Federate.
	FederatesWith []string
}

// CreateEntry registers e with spire-server's own CLI (not this
// repository's code, so it can check the spire package independently) and
// returns the entry ID. The agent sees a new entry about 2 s later.
func (s *SPIRE) CreateEntry(t testing.TB, e Entry) string {
	t.Helper()
	parent := e.ParentID
	if parent == "" {
		parent = s.NodeID.String()
	}
	args := []string{"entry", "create", "-socketPath", s.ServerSocket, "-output", "json",
		"-parentID", parent, "-spiffeID", e.SPIFFEID}
	for _, sel := range e.Selectors {
		args = append(args, "-selector", sel)
	}
	if e.X509SVIDTTL > 0 {
		args = append(args, "-x509SVIDTTL", strconv.Itoa(int(e.X509SVIDTTL/time.Second)))
	}
	if e.JWTSVIDTTL > 0 {
		args = append(args, "-jwtSVIDTTL", strconv.Itoa(int(e.JWTSVIDTTL/time.Second)))
	}
	for _, d := range e.DNSNames {
		args = append(args, "-dns", d)
	}
	if e.Hint != "" {
		args = append(args, "-hint", e.Hint)
	}
	for _, td := range e.FederatesWith {
		args = append(args, "-federatesWith", "spiffe://"+td)
	}
	out, err := run(s.serverBin(), args...)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Results []struct {
			Status struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"status"`
			Entry struct {
				ID string `json:"id"`
			} `json:"entry"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Results) != 1 {
		t.Fatalf("spiretest: entry create output %q: %v", out, err)
	}
	if r := resp.Results[0]; r.Status.Code != 0 {
		t.Fatalf("spiretest: entry create %s: %s", e.SPIFFEID, r.Status.Message)
	}
	return resp.Results[0].Entry.ID
}

// ShownEntry is an entry as `spire-server entry show` reports it.
type ShownEntry struct {
	ID       string `json:"id"`
	SPIFFEID struct {
		TrustDomain string `json:"trust_domain"`
		Path        string `json:"path"`
	} `json:"spiffe_id"`
	ParentID struct {
		TrustDomain string `json:"trust_domain"`
		Path        string `json:"path"`
	} `json:"parent_id"`
	Selectors []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"selectors"`
	X509SVIDTTL int      `json:"x509_svid_ttl"`
	JWTSVIDTTL  int      `json:"jwt_svid_ttl"`
	DNSNames    []string `json:"dns_names"`
	Hint        string   `json:"hint"`
}

// SPIFFEIDString returns the entry's SPIFFE ID.
func (e ShownEntry) SPIFFEIDString() string {
	return "spiffe://" + e.SPIFFEID.TrustDomain + e.SPIFFEID.Path
}

// Entries lists the server's entries with spire-server's CLI.
func (s *SPIRE) Entries(t testing.TB) []ShownEntry {
	t.Helper()
	out, err := run(s.serverBin(), "entry", "show", "-socketPath", s.ServerSocket, "-output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Entries []ShownEntry `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("spiretest: entry show output: %v", err)
	}
	return resp.Entries
}

// DeleteEntry deletes an entry by ID with spire-server's CLI.
func (s *SPIRE) DeleteEntry(t testing.TB, id string) {
	t.Helper()
	if _, err := run(s.serverBin(), "entry", "delete", "-socketPath", s.ServerSocket, "-entryID", id); err != nil {
		t.Fatal(err)
	}
}

// SelfSelectors returns selectors that match only the running test binary:
// its uid and its path, found at run time (go test builds it in a new
// temporary folder every run).
func SelfSelectors(t testing.TB) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("spiretest: %v", err)
	}
	return []string{fmt.Sprintf("unix:uid:%d", os.Getuid()), "unix:path:" + exe}
}
