package spiretest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/internal/spiretest"
)

const (
	gatewayID = "spiffe://example.org/portcullis"
	appID     = "spiffe://example.org/tenant/acme/app/demo-app"
	agentID   = "spiffe://example.org/tenant/acme/agent/demo-agent"
	humanID   = "spiffe://example.org/tenant/acme/human/alice"
	partnerID = "spiffe://partner.test/tenant/globex/app/partner-app"
)

// TestGatewayWithSPIRE runs the gateway on its Workload API SVID with two
// workloads calling it through the OpenAI SDK, through SVID rotation and an
// agent restart, and checks what policy and the audit log saw.
func TestGatewayWithSPIRE(t *testing.T) {
	st := startStack(t)
	app := st.startDriver(t, "example-app")
	agent := st.startDriver(t, "example-agent")

	t.Run("each workload has its own SPIFFE ID", func(t *testing.T) {
		for _, c := range []struct {
			d    *driver
			want string
		}{{app, appID}, {agent, agentID}} {
			if r := c.d.do(t, "id"); r.OwnID != c.want {
				t.Errorf("%s: got SPIFFE ID %q, want %q", c.d.name, r.OwnID, c.want)
			}
		}
		r := app.do(t, "call gpt-4o-mini")
		if !r.OK || r.GatewayID != gatewayID {
			t.Errorf("call: got ok=%v gateway %q (%s), want ok and %s", r.OK, r.GatewayID, r.Error, gatewayID)
		}
	})

	t.Run("policy sees kind and tenant", func(t *testing.T) {
		calls := []struct {
			d          *driver
			model      string
			wantStatus int
		}{
			{app, "gpt-4o-mini", 200},
			{app, "gpt-4o", 200},
			{agent, "gpt-4o-mini", 200},
			{agent, "gpt-4o", 403}, // not in acme's agent_models
		}
		for _, c := range calls {
			r := c.d.do(t, "call "+c.model)
			if r.Status != c.wantStatus || r.OK != (c.wantStatus == 200) {
				t.Errorf("%s calling %s: got status %d ok=%v (%s), want %d", c.d.name, c.model, r.Status, r.OK, r.Error, c.wantStatus)
			}
			if c.wantStatus == 200 && !strings.Contains(r.Content, "fake "+c.model) {
				t.Errorf("%s calling %s: content %q is not from the fake provider", c.d.name, c.model, r.Content)
			}
		}
	})

	t.Run("federated caller", func(t *testing.T) {
		partner := st.startDriverOn(t, "partner-app", st.partner.WorkloadAddr())
		if r := partner.do(t, "id"); r.OwnID != partnerID {
			t.Fatalf("partner SPIFFE ID: got %q, want %q", r.OwnID, partnerID)
		}
		// The gateway trusts partner.test through the bundle its agent
		// federates; the partner verifies the gateway the same way.
		r := partner.do(t, "call gpt-4o-mini")
		if !r.OK || r.GatewayID != gatewayID {
			t.Fatalf("partner call: got %d ok=%v gateway %q (%s)", r.Status, r.OK, r.GatewayID, r.Error)
		}
		if r := partner.do(t, "call gpt-4o"); r.Status != 403 {
			t.Errorf("partner gpt-4o: got %d (%s), want 403 from policy", r.Status, r.Error)
		}
	})

	t.Run("JWT-SVID as user context", func(t *testing.T) {
		human := st.startDriver(t, "example-human")
		tok := human.do(t, "jwt portcullis")
		if !tok.OK || tok.OwnID != humanID {
			t.Fatalf("human JWT-SVID: got ok=%v as %q (%s), want a token for %s", tok.OK, tok.OwnID, tok.Error, humanID)
		}
		other := human.do(t, "jwt someone-else")
		if !other.OK {
			t.Fatalf("JWT-SVID for another audience: %s", other.Error)
		}
		// The same person's JWT-SVID from another SPIRE deployment: signed,
		// but by a trust domain whose bundle the gateway does not have.
		foreign := spiretest.Start(t, spiretest.Options{TrustDomain: "other.test"})
		foreign.CreateEntry(t, spiretest.Entry{
			SPIFFEID:  "spiffe://other.test/tenant/acme/human/alice",
			Selectors: []string{fmt.Sprintf("unix:uid:%d", os.Getuid()), "unix:path:" + filepath.Join(st.bin, "example-human")},
		})
		foreignTok := st.startDriverOn(t, "example-human", foreign.WorkloadAddr()).do(t, "jwt portcullis")
		if !foreignTok.OK || foreignTok.OwnID != "spiffe://other.test/tenant/acme/human/alice" {
			t.Fatalf("JWT-SVID from other.test: got ok=%v as %q (%s)", foreignTok.OK, foreignTok.OwnID, foreignTok.Error)
		}
		cases := []struct {
			name       string
			token      string
			wantStatus int
			wantErr    string
		}{
			{"no user token", "", 403, "denied by policy"},
			{"valid JWT-SVID of a human", tok.Token, 200, ""},
			{"tampered", tamper(tok.Token), 401, "user token was refused"},
			{"unsigned", unsigned(tok.Token), 401, "user token was refused"},
			{"wrong audience", other.Token, 401, "user token was refused"},
			{"wrong trust domain", foreignTok.Token, 401, "user token was refused"},
		}
		for _, c := range cases {
			r := app.do(t, strings.TrimSpace("call o3-mini "+c.token))
			if r.Status != c.wantStatus || !strings.Contains(r.Error, c.wantErr) {
				t.Errorf("%s: got %d %q, want %d containing %q", c.name, r.Status, r.Error, c.wantStatus, c.wantErr)
			}
		}
	})

	// rotate calls from both workloads until the gateway has served with at
	// least `want` distinct certificates and the app has used as many of its
	// own; every call must succeed.
	rotate := func(t *testing.T, want int, gwSeen, appSeen map[string]bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		calls := 0
		for len(gwSeen) < want || len(appSeen) < want {
			if time.Now().After(deadline) {
				t.Fatalf("after %d calls: %d gateway and %d app certificates seen, want %d each", calls, len(gwSeen), len(appSeen), want)
			}
			for _, d := range []*driver{app, agent} {
				r := d.do(t, "call gpt-4o-mini")
				calls++
				if !r.OK {
					t.Fatalf("%s: call %d failed during rotation: %d %s", d.name, calls, r.Status, r.Error)
				}
				gwSeen[r.GwSerial] = true
				if d == app {
					appSeen[r.OwnSerial] = true
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("%d calls, all OK, over %d gateway and %d app certificates", calls, len(gwSeen), len(appSeen))
	}

	gwSeen, appSeen := map[string]bool{}, map[string]bool{}
	t.Run("rotation while requests flow", func(t *testing.T) {
		began := time.Now()
		rotate(t, 2, gwSeen, appSeen)
		t.Logf("rotation seen after %s", time.Since(began).Round(time.Millisecond))
	})

	t.Run("agent stop and restart", func(t *testing.T) {
		st.spire.StopAgent(t)
		stopped := time.Now()
		calls := 0
		for time.Since(stopped) < 3*time.Second {
			for _, d := range []*driver{app, agent} {
				r := d.do(t, "call gpt-4o-mini")
				if !r.OK {
					t.Fatalf("%s: call with the agent stopped failed: %d %s", d.name, r.Status, r.Error)
				}
				calls++
				gwSeen[r.GwSerial] = true
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%d calls with the agent stopped, all OK on the SVIDs held", calls)
		st.spire.RestartAgent(t)
		began := time.Now()
		// Recovery: the gateway gets a certificate it has not served with
		// before from the restarted agent, and uses it.
		rotate(t, len(gwSeen)+1, gwSeen, map[string]bool{})
		t.Logf("recovered %s after the agent restarted", time.Since(began).Round(time.Millisecond))
	})

	t.Run("audit log", func(t *testing.T) {
		st.stopGateway(t)
		out, err := exec.Command(st.gatewayBin, "audit", "verify", st.auditDir).CombinedOutput()
		if err != nil {
			t.Fatalf("portcullis audit verify: %v\n%s", err, out)
		}
		t.Logf("%s", strings.TrimSpace(string(out)))
		type key struct{ id, td, kind, tenant, name, model string }
		seen := map[key]map[bool]int{}
		for _, rec := range auditRecords(t, st.auditDir) {
			if rec.Type != "decision" || rec.Principal == nil {
				continue
			}
			k := key{rec.Principal.SPIFFEID, rec.Principal.TrustDomain, rec.Principal.Kind, rec.Principal.Tenant, rec.Principal.Name, rec.Request.Model}
			if seen[k] == nil {
				seen[k] = map[bool]int{}
			}
			seen[k][rec.Decision.Allow]++
		}
		checks := []struct {
			k     key
			allow bool
		}{
			{key{appID, "example.org", "application", "acme", "demo-app", "gpt-4o-mini"}, true},
			{key{appID, "example.org", "application", "acme", "demo-app", "gpt-4o"}, true},
			{key{agentID, "example.org", "agent", "acme", "demo-agent", "gpt-4o-mini"}, true},
			{key{agentID, "example.org", "agent", "acme", "demo-agent", "gpt-4o"}, false},
			{key{partnerID, "partner.test", "application", "globex", "partner-app", "gpt-4o-mini"}, true},
			{key{partnerID, "partner.test", "application", "globex", "partner-app", "gpt-4o"}, false},
		}
		for _, c := range checks {
			if seen[c.k][c.allow] == 0 {
				t.Errorf("no decision record with allow=%v for %+v; seen: %v", c.allow, c.k, seen)
			}
		}
		if n := seen[checks[3].k][true]; n != 0 {
			t.Errorf("%d records allowed the agent gpt-4o", n)
		}
	})
}

type auditRecord struct {
	Type      string `json:"type"`
	Principal *struct {
		SPIFFEID    string `json:"spiffe_id"`
		TrustDomain string `json:"trust_domain"`
		Kind        string `json:"kind"`
		Tenant      string `json:"tenant"`
		Name        string `json:"name"`
	} `json:"principal"`
	Request struct {
		Model string `json:"model"`
	} `json:"request"`
	Decision struct {
		Allow bool `json:"allow"`
	} `json:"decision"`
}

// auditRecords reads every record of the audit log in dir through the
// audit package's reader.
func auditRecords(t *testing.T, dir string) []auditRecord {
	t.Helper()
	r, err := audit.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []auditRecord
	for seq := range r.Size() {
		line, err := r.Record(seq)
		if err != nil {
			t.Fatalf("audit record %d: %v", seq, err)
		}
		var rec auditRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("audit record %d: %v", seq, err)
		}
		out = append(out, rec)
	}
	return out
}

// tamper changes the JWT's payload (so its claims) and keeps the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p := []byte(parts[1])
	if p[5] == 'A' {
		p[5] = 'B'
	} else {
		p[5] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}

// unsigned drops the JWT's signature.
func unsigned(tok string) string {
	parts := strings.Split(tok, ".")
	return parts[0] + "." + parts[1] + "."
}
