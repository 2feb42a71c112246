package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// TestTenantDigestKey checks the derivation against HMAC-SHA256 computed
// here, and that tenants (and masters) get keys of their own.
func TestTenantDigestKey(t *testing.T) {
	master := []byte("master digest key 0123456789")
	seen := map[string]string{}
	for _, tenant := range []string{"acme", "globex", "", "acme\x00", "Acme"} {
		mac := hmac.New(sha256.New, master)
		mac.Write([]byte("portcullis prompt digest v1\x00" + tenant))
		want := mac.Sum(nil)
		if got := TenantDigestKey(master, tenant); !hmac.Equal(got, want) {
			t.Errorf("TenantDigestKey(%q) = %x, want %x", tenant, got, want)
		}
		if got := tenantKey(master, tenant); !hmac.Equal(got, want) {
			t.Errorf("tenantKey(%q) = %x, want %x", tenant, got, want)
		}
		if got := tenantKey(master, tenant); !hmac.Equal(got, want) {
			t.Errorf("tenantKey(%q), cached = %x, want %x", tenant, got, want)
		}
		if prev, dup := seen[string(want)]; dup {
			t.Errorf("tenants %q and %q share a key", prev, tenant)
		}
		seen[string(want)] = tenant
	}
	if a, b := tenantKey(master, "acme"), tenantKey([]byte("another master key 0123456789"), "acme"); hmac.Equal(a, b) {
		t.Error("two master keys derive the same tenant key")
	}
}

// TestToolArgsDigestKeyed checks that a tool call's arguments digest is the
// documented HMAC under the tenant key, and no longer their plain SHA-256.
func TestToolArgsDigestKeyed(t *testing.T) {
	const args = `{"city":"Paris"}`
	master := []byte("master digest key 0123456789")
	digestOf := func(tenant string) string {
		acc := newToolCall("call_1", "get_weather")
		acc.args.Write([]byte(args[:5])) // arguments arrive in pieces
		acc.args.Write([]byte(args[5:]))
		calls := toolCalls([]*toolCallAcc{acc}, tenantKey(master, tenant))
		if len(calls) != 1 || calls[0].ID != "call_1" || calls[0].Name != "get_weather" {
			t.Fatalf("toolCalls = %+v", calls)
		}
		return calls[0].ArgumentsDigest
	}
	acme := digestOf("acme")
	if want := argsDigest(TenantDigestKey(master, "acme"), args); acme != want {
		t.Errorf("acme digest = %s, want %s", acme, want)
	}
	if acme == sha256hex(args) {
		t.Error("arguments digest is the plain SHA-256 of the arguments: anyone can confirm a guess")
	}
	if again := digestOf("acme"); again != acme {
		t.Errorf("same tenant, same arguments: %s then %s", acme, again)
	}
	if globex := digestOf("globex"); globex == acme {
		t.Error("two tenants get the same arguments digest")
	}
}
