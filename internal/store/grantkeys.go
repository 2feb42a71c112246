package store

import (
	"context"
	"crypto/ed25519"
	"maps"
	"sync"
	"time"
)

// GrantKeyRecord is one grant verification key in the shared set: its kid
// (the RFC 7638 thumbprint, checked by the verifier), the Ed25519 public
// key, and NotAfter, the latest expiry of any grant it may have signed. The
// key stays in the set until NotAfter plus the store's Retention.
type GrantKeyRecord struct {
	ID       string            `json:"kid"`
	Public   ed25519.PublicKey `json:"public"`
	NotAfter time.Time         `json:"not_after"`
}

// GrantKeySet is the set of grant verification keys that every replica
// accepts: each replica publishes the keys it signs with, so a grant
// minted on one verifies on all, whether they share one key file or each
// has its own. Lookups answer from memory.
type GrantKeySet interface {
	// PublishGrantKey adds k to the set or extends its NotAfter (a later
	// NotAfter never shrinks).
	PublishGrantKey(ctx context.Context, k GrantKeyRecord) error
	// GrantPublicKey returns the key named kid, if it is in the set.
	GrantPublicKey(kid string) (ed25519.PublicKey, bool)
	// GrantPublicKeys returns every key in the set by kid.
	GrantPublicKeys() map[string]ed25519.PublicKey
}

// keyView is a set of published keys in memory, as Bolt keeps it and as an
// Etcd replica last saw it. A key past NotAfter plus retention is absent
// even before the backend deletes it.
type keyView struct {
	clock     func() time.Time
	retention time.Duration

	mu   sync.RWMutex
	keys map[string]GrantKeyRecord
}

func newKeyView(clock func() time.Time, retention time.Duration) *keyView {
	return &keyView{clock: clock, retention: retention, keys: map[string]GrantKeyRecord{}}
}

func (v *keyView) live(k GrantKeyRecord, now time.Time) bool {
	return !now.After(k.NotAfter.Add(v.retention))
}

func (v *keyView) get(kid string) (ed25519.PublicKey, bool) {
	v.mu.RLock()
	k, ok := v.keys[kid]
	v.mu.RUnlock()
	if !ok || !v.live(k, v.clock()) {
		return nil, false
	}
	return k.Public, true
}

func (v *keyView) all() map[string]ed25519.PublicKey {
	now := v.clock()
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make(map[string]ed25519.PublicKey, len(v.keys))
	for id, k := range v.keys {
		if v.live(k, now) {
			out[id] = k.Public
		}
	}
	return out
}

// merge adds k, keeping the later NotAfter.
func (v *keyView) merge(k GrantKeyRecord) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if old, ok := v.keys[k.ID]; ok && old.NotAfter.After(k.NotAfter) {
		return
	}
	v.keys[k.ID] = k
}

func (v *keyView) remove(kid string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.keys, kid)
}

func (v *keyView) replace(keys map[string]GrantKeyRecord) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.keys = maps.Clone(keys)
}

var _ GrantKeySet = (*Bolt)(nil)

// PublishGrantKey implements GrantKeySet. A single node's set is its own
// keys, in memory: they are in its key file already.
func (b *Bolt) PublishGrantKey(_ context.Context, k GrantKeyRecord) error {
	b.grantKeys.merge(k)
	return nil
}

// GrantPublicKey implements GrantKeySet.
func (b *Bolt) GrantPublicKey(kid string) (ed25519.PublicKey, bool) { return b.grantKeys.get(kid) }

// GrantPublicKeys implements GrantKeySet.
func (b *Bolt) GrantPublicKeys() map[string]ed25519.PublicKey { return b.grantKeys.all() }
