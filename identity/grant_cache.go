package identity

import (
	"sync"
	"time"
)

// grantCache remembers tokens whose signature, audience and claims were
// checked, keyed by the token's exact bytes (so a hit is the same token, not
// a hash collision), with the kid that verified them: a hit counts only while
// that key is still in the keyring. It is bounded; when full, expired entries
// go first, then arbitrary ones (map order), which costs a re-verification at
// worst. A nil cache remembers nothing.
type grantCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]cachedGrant
}

type cachedGrant struct {
	g   *Grant
	kid string
}

func newGrantCache(max int) *grantCache {
	return &grantCache{max: max, m: make(map[string]cachedGrant, min(max, 1024))}
}

func (c *grantCache) get(token string) (cachedGrant, bool) {
	if c == nil {
		return cachedGrant{}, false
	}
	c.mu.RLock()
	e, ok := c.m[token]
	c.mu.RUnlock()
	return e, ok
}

func (c *grantCache) put(token string, e cachedGrant, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		t := now.Unix()
		for k, old := range c.m {
			if old.g.Expiry <= t {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max*3/4 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[token] = e
}

// Sign signs g with the keyring's current key, as [GrantKeyring.Sign] does,
// and remembers the token as verified, so its first use here costs a map
// lookup instead of an Ed25519 verification. What is remembered is the token
// decoded again (the claims exactly as the signed bytes carry them, not g,
// which the caller may change later) under the kid that signed it: a hit
// still needs that key in the keyring, and time and binding are checked on
// every use as for any token. A token for another audience is not
// remembered; its use is refused as usual.
func (v *GrantVerifier) Sign(g *Grant) (string, error) {
	tok, kid, err := v.Keys.sign(g)
	if err != nil || v.cache == nil {
		return tok, err
	}
	p, perr := parseGrant(tok)
	if perr != nil || p.kid != kid || p.claims.Audience != v.Audience {
		return tok, nil
	}
	v.cache.put(tok, cachedGrant{g: &p.claims, kid: kid}, time.Unix(p.claims.IssuedAt, 0))
	return tok, nil
}
