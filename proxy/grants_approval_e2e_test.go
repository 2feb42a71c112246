package proxy_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
)

// bundleWithGrantApprovals copies the default bundle and makes grants for
// the given purposes need a human approval: data, not Rego.
func bundleWithGrantApprovals(t *testing.T, purposes ...string) string {
	t.Helper()
	return bundleWithApprovals(t, []string{}, purposes)
}

// bundleWithApprovals copies the default bundle and makes every call of the
// given models, and grants for the given purposes, need a human approval.
func bundleWithApprovals(t *testing.T, models, purposes []string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, policy.DefaultBundle()); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]any{
		"tools": []string{"issue_refund", "delete_records"}, "models": models, "grant_purposes": purposes,
	})
	if err := os.WriteFile(filepath.Join(dir, "approvals", "data.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// mintAs posts a mint request as the dev app, presenting approval when set,
// and returns the status, the decoded body and the parked approval id.
func (e *gatewayEnv) mintAs(body map[string]any, approval string) (int, map[string]any, string) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "https://"+e.addr+"/v1/grants", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if approval != "" {
		req.Header.Set(proxy.ApprovalHeader, approval)
	}
	resp, err := e.httpClient(e.svid(identity.DevAppID)).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header.Get(proxy.ApprovalIDHeader)
}

func TestGrantMintRequiringApproval(t *testing.T) {
	env := startGateway(t, envOptions{bundleDir: bundleWithGrantApprovals(t, "support")})
	body := mintBody("refund-42", "support", []string{"gpt-4o-mini"}, []string{"search"}, 2000)

	status, m, ap := env.mintAs(body, "")
	if status != http.StatusForbidden || get(m, "error", "code") != "approval_required" || ap == "" {
		t.Fatalf("mint for an approval purpose: %d %v (approval %q); want 403 approval_required with an id", status, m, ap)
	}
	if _, ok := m["grant"]; ok {
		t.Fatal("a parked mint returned a grant")
	}

	// Before approval the approval id admits nothing.
	if status, m, _ := env.mintAs(body, ap); status != http.StatusForbidden {
		t.Fatalf("retry before approval: %d %v, want 403", status, m)
	}
	env.approve(identity.DevHumanID, ap)

	// Another grant request with the same approval: refused, approval kept.
	wider := mintBody("refund-42", "support", []string{"gpt-4o-mini"}, []string{"search", "issue_refund"}, 2000)
	if status, m, _ := env.mintAs(wider, ap); status != http.StatusForbidden {
		t.Fatalf("approval used for a different grant request: %d %v, want 403", status, m)
	}

	status, m, _ = env.mintAs(body, ap)
	if status != http.StatusCreated || m["grant"] == nil {
		t.Fatalf("exact retry after approval: %d %v, want 201 with a grant", status, m)
	}
	if status, m, _ := env.mintAs(body, ap); status != http.StatusForbidden {
		t.Fatalf("replayed approval: %d %v, want 403", status, m)
	}

	var minted []map[string]any
	for _, r := range env.records() {
		if r["action"] == "grant.mint" && get(r, "decision", "allow") == true {
			minted = append(minted, r)
		}
	}
	if len(minted) != 1 || get(minted[0], "detail", "approval_id") != ap || get(minted[0], "detail", "approved_by") != identity.DevHumanID {
		t.Fatalf("the minted grant's record does not name its approval: %v", minted)
	}
	// requested; refused (retry before approval); approved; refused (another
	// grant request); used (the exact retry); refused (the replay).
	want := "requested refused approved refused used refused"
	if got := strings.Join(steps(env.approvalRecords(ap)), " "); got != want {
		t.Errorf("approval steps = %s; want %s", got, want)
	}
}
