package identity

import (
	"crypto/ed25519"
	"crypto/subtle"
	"slices"
	"strings"
)

// GrantKeySource supplies grant verification keys beyond a keyring's own:
// the keys other gateway replicas published in their shared store
// (internal/store's Bolt and Etcd implement it). Lookups must be cheap:
// they run whenever a verifier meets a token it has not verified before.
type GrantKeySource interface {
	// GrantPublicKey returns the key named kid, if there is one.
	GrantPublicKey(kid string) (ed25519.PublicKey, bool)
	// GrantPublicKeys returns every key by kid.
	GrantPublicKeys() map[string]ed25519.PublicKey
}

type peerKeys struct{ src GrantKeySource }

// SetPeers makes the keyring also verify grants signed by the keys src
// supplies, and serve them in its JWKS. A key is accepted only under its
// own kid (its RFC 7638 thumbprint), so a source cannot pass one key off
// as another. nil removes the peers.
func (k *GrantKeyring) SetPeers(src GrantKeySource) {
	if src == nil {
		k.peers.Store(nil)
		return
	}
	k.peers.Store(&peerKeys{src: src})
}

// PublicKeys returns the keyring's own keys without their private parts,
// current first: what a replica publishes for the others.
func (k *GrantKeyring) PublicKeys() []GrantKey {
	own := k.keys.Load().order
	out := make([]GrantKey, len(own))
	for i, key := range own {
		out[i] = GrantKey{ID: key.ID, Public: key.Public}
	}
	return out
}

// publicKey returns the verification key named kid: the keyring's own, or
// a peer's whose thumbprint is kid.
func (k *GrantKeyring) publicKey(kid string) (ed25519.PublicKey, bool) {
	if key, ok := k.keys.Load().byID[kid]; ok {
		return key.Public, true
	}
	pub, ok := k.peerKey(kid)
	if !ok || len(pub) != ed25519.PublicKeySize || subtle.ConstantTimeCompare([]byte(thumbprint(pub)), []byte(kid)) != 1 {
		return nil, false
	}
	return pub, true
}

func (k *GrantKeyring) peerKey(kid string) (ed25519.PublicKey, bool) {
	p := k.peers.Load()
	if p == nil {
		return nil, false
	}
	return p.src.GrantPublicKey(kid)
}

// verificationKeys are the keyring's own keys, current first, then the
// peers' well-formed keys that are not its own, by kid.
func (k *GrantKeyring) verificationKeys() []GrantKey {
	ks := k.keys.Load()
	out := slices.Clone(ks.order)
	p := k.peers.Load()
	if p == nil {
		return out
	}
	var extra []GrantKey
	for kid, pub := range p.src.GrantPublicKeys() {
		if _, own := ks.byID[kid]; own || len(pub) != ed25519.PublicKeySize || thumbprint(pub) != kid {
			continue
		}
		extra = append(extra, GrantKey{ID: kid, Public: pub})
	}
	slices.SortFunc(extra, func(a, b GrantKey) int { return strings.Compare(a.ID, b.ID) })
	return append(out, extra...)
}
