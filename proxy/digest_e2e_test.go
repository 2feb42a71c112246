package proxy_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/identity"
)

// harnessDigestKey is the master digest key of startGateway's gateways.
const harnessDigestKey = "test digest key 0123456789"

// tenantKeyFor derives a tenant's digest key from the harness master key as
// docs/security-model.md says, apart from the gateway's code:
// HMAC-SHA256(master, "portcullis prompt digest v1\x00" || tenant).
func tenantKeyFor(tenant string) []byte {
	mac := hmac.New(sha256.New, []byte(harnessDigestKey))
	mac.Write([]byte("portcullis prompt digest v1\x00"))
	mac.Write([]byte(tenant))
	return mac.Sum(nil)
}

// hmacHex is hex(HMAC-SHA256(key, the parts one after another)).
func hmacHex(key []byte, parts ...string) string {
	mac := hmac.New(sha256.New, key)
	for _, p := range parts {
		mac.Write([]byte(p))
	}
	return hex.EncodeToString(mac.Sum(nil))
}

// argsDigestFor is the documented arguments_digest of a model's tool call
// for tenant: hex(HMAC-SHA256(key_t, "portcullis tool arguments v1\x00" ||
// SHA-256(arguments))).
func argsDigestFor(tenant, args string) string {
	sum := sha256.Sum256([]byte(args))
	return hmacHex(tenantKeyFor(tenant), "portcullis tool arguments v1\x00", string(sum[:]))
}

// TestPromptDigestPerTenant sends one prompt, byte for byte, from two
// workloads of tenant acme and one of globex: the decision records commit
// to it with acme's key twice and globex's once, each equal to the digest
// recomputed here from the master key.
func TestPromptDigestPerTenant(t *testing.T) {
	env := startGateway(t, envOptions{})
	const body = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"the same prompt"}]}`
	// The chat prompt digest: each message's role and its content as the
	// JSON bytes the client sent, each followed by a 0 byte.
	message := "system\x00" + `"be brief"` + "\x00" + "user\x00" + `"the same prompt"` + "\x00"
	promptDigest := func(id string) string {
		t.Helper()
		c := env.httpClient(env.svid(id))
		resp, err := c.Post("https://"+env.addr+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		recs := env.recordsFor(requestID(t, resp))
		if len(recs) == 0 || recs[0]["type"] != "decision" {
			t.Fatalf("%s: records %v", id, recs)
		}
		d, _ := get(recs[0], "request", "prompt", "digest").(string)
		return d
	}
	acmeApp := promptDigest(identity.DevAppID)
	acmeOther := promptDigest("spiffe://" + identity.DevTrustDomain + "/tenant/acme/app/other")
	globex := promptDigest(globexID)
	tests := []struct {
		name, got, want string
	}{
		{"acme app", acmeApp, hmacHex(tenantKeyFor("acme"), message)},
		{"another acme app", acmeOther, hmacHex(tenantKeyFor("acme"), message)},
		{"globex app", globex, hmacHex(tenantKeyFor("globex"), message)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: prompt digest got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if acmeApp == globex {
		t.Error("two tenants' digests of one prompt are equal: one tenant's key confirms another's prompts")
	}
	if gatewayWide := hmacHex([]byte(harnessDigestKey), message); acmeApp == gatewayWide {
		t.Error("the prompt digest is keyed with the master key, not the tenant's")
	}
}

// The body digest of a parked call's approval request commits to the
// client's exact body under the caller's tenant key, as
// docs/security-model.md says: HMAC-SHA256(key_t, "portcullis request body
// v1\x00" || body).
func TestApprovalBodyDigestPerTenant(t *testing.T) {
	env := startGateway(t, envOptions{})
	hc := env.httpClient(env.svid(identity.DevAppID))
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"refund order 42"}],` +
		`"tools":[{"type":"function","function":{"name":"issue_refund","parameters":{"type":"object"}}}]}`
	resp, err := hc.Post("https://"+env.addr+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("Portcullis-Approval-Id") == "" {
		t.Fatalf("got %d, want the call parked for approval", resp.StatusCode)
	}
	var got any
	for _, r := range env.recordsFor(requestID(t, resp)) {
		if r["action"] == "approval.requested" {
			got = get(r, "detail", "summary", "body_digest")
		}
	}
	want := hmacHex(tenantKeyFor("acme"), "portcullis request body v1\x00", body)
	if got != want {
		t.Errorf("body_digest = %v, want %s", got, want)
	}
	if master := hmacHex([]byte(harnessDigestKey), body); got == master {
		t.Error("body_digest is keyed with the master key")
	}
}
