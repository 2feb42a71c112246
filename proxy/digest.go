package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
	"sync/atomic"
)

// The audit log holds digests of prompts, of the tool-call arguments a
// model emits and of MCP arguments and results, never the text. Each is an
// HMAC-SHA256 under the caller's tenant key, derived from the gateway's
// master digest key (Config.DigestKey):
//
//	key_t = HMAC-SHA256(master, "portcullis prompt digest v1\x00" || tenant)
//
// tenant is the principal's Tenant as UTF-8, "" for a principal without
// one. A reader of the log learns nothing from a digest without key_t;
// an auditor given one tenant's key can check that tenant's commitments
// and no other's. docs/security-model.md gives the byte-level construction.
const tenantKeyLabel = "portcullis prompt digest v1\x00"

// toolArgsLabel separates the digest of a model's tool-call arguments from
// every other digest made with a tenant key.
const toolArgsLabel = "portcullis tool arguments v1\x00"

// maxCachedTenantKeys bounds the derived-key cache: tenants are few, and
// past the bound a key is derived again on each use rather than kept.
const maxCachedTenantKeys = 4096

// TenantDigestKey derives the key of tenant's digests from the master
// digest key: HMAC-SHA256(master, "portcullis prompt digest v1\x00" ||
// tenant). An operator holding the master key recomputes a tenant's
// digests with it.
func TenantDigestKey(master []byte, tenant string) []byte {
	mac := hmac.New(sha256.New, master)
	mac.Write([]byte(tenantKeyLabel))
	mac.Write([]byte(tenant))
	return mac.Sum(nil)
}

type tenantKeyID struct{ master, tenant string }

var (
	tenantKeys      sync.Map // tenantKeyID → []byte
	tenantKeysCount atomic.Int64
)

// tenantKey is TenantDigestKey, cached. The returned slice is shared: it
// must not be modified.
func tenantKey(master []byte, tenant string) []byte {
	id := tenantKeyID{string(master), tenant}
	if k, ok := tenantKeys.Load(id); ok {
		return k.([]byte)
	}
	k := TenantDigestKey(master, tenant)
	if tenantKeysCount.Load() < maxCachedTenantKeys {
		if _, loaded := tenantKeys.LoadOrStore(id, k); !loaded {
			tenantKeysCount.Add(1)
		}
	}
	return k
}

// digestKey is the key of the digests the gateway records for tenant.
func (g *Gateway) digestKey(tenant string) []byte { return tenantKey(g.cfg.DigestKey, tenant) }

// toolArgsDigest is the audit digest of one tool call's arguments, given
// their SHA-256 (the tap hashes arguments as they stream, before the
// tenant's key is at hand): hex(HMAC-SHA256(key_t, "portcullis tool
// arguments v1\x00" || SHA-256(arguments))).
func toolArgsDigest(key []byte, args hash.Hash) string {
	var sum [sha256.Size]byte
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(toolArgsLabel))
	mac.Write(args.Sum(sum[:0]))
	return hex.EncodeToString(mac.Sum(sum[:0]))
}
