package identity

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Grant is the claim set of a task grant: a short-lived, signed statement
// that the workload named by Subject may act for Task, within Scopes, until
// Expiry. The JSON names are the token's wire format (docs/grants.md):
//
//	{"jti":"g_…","sub":"spiffe://…/agent/bot","aud":"portcullis",
//	 "iat":1700000000,"nbf":1700000000,"exp":1700000600,
//	 "task":"ticket-4711","tenant":"acme","purpose":"support",
//	 "scopes":{"models":["gpt-4o-mini"],"tools":["search"],"max_tokens":5000},
//	 "chain":["spiffe://…/app/helpdesk","spiffe://…/agent/bot"],
//	 "parent":"g_…","user":{"subject":"…","issuer":"…","kind":"human"}}
//
// Chain is the flat form of RFC 8693's nested "act" claim: every workload the
// task passed through, oldest first, ending with Subject. A grant minted
// directly has a chain of one; each delegation appends the new holder. The
// delegation depth is len(Chain)-1.
type Grant struct {
	ID        string    `json:"jti"`
	Subject   string    `json:"sub"`
	Audience  string    `json:"aud"`
	IssuedAt  int64     `json:"iat"`
	NotBefore int64     `json:"nbf"`
	Expiry    int64     `json:"exp"`
	Task      string    `json:"task"`
	Tenant    string    `json:"tenant"`
	Purpose   string    `json:"purpose"`
	Scopes    Scopes    `json:"scopes"`
	Chain     []string  `json:"chain"`
	Parent    string    `json:"parent,omitempty"`
	User      *UserInfo `json:"user,omitempty"`
}

// Scopes bound what a grant allows: the models it may call, the tools it may
// offer or call, and its token budget (total tokens over the grant's life; 0
// means no budget of its own, the parent's still applies).
type Scopes struct {
	Models    []string `json:"models"`
	Tools     []string `json:"tools"`
	MaxTokens int      `json:"max_tokens"`
}

// UserInfo is the human a task runs for, from a verified JWT-SVID or OIDC ID
// token ([UserVerifier]). Kind is always "human" today.
type UserInfo struct {
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	Kind    string `json:"kind"`
}

// Depth is the number of delegations between the minted grant and g.
func (g *Grant) Depth() int { return max(len(g.Chain)-1, 0) }

// ExpiresAt returns the expiry as a time.
func (g *Grant) ExpiresAt() time.Time { return time.Unix(g.Expiry, 0) }

// Covers reports whether s allows everything t allows: t's models and tools
// are subsets of s's, and t's budget is no larger (a zero budget in t is
// larger than any positive one in s).
func (s Scopes) Covers(t Scopes) bool {
	for _, m := range t.Models {
		if !slices.Contains(s.Models, m) {
			return false
		}
	}
	for _, tool := range t.Tools {
		if !slices.Contains(s.Tools, tool) {
			return false
		}
	}
	return s.MaxTokens == 0 || (t.MaxTokens > 0 && t.MaxTokens <= s.MaxTokens)
}

// Errors that [GrantKeys.Verify] and [Delegate] wrap. Each is one reason a
// grant is refused; the gateway maps them to 401 or 403 and says which.
var (
	ErrGrantMalformed   = errors.New("identity: grant is malformed")
	ErrGrantAlgorithm   = errors.New("identity: grant uses an algorithm this gateway does not accept")
	ErrGrantUnknownKey  = errors.New("identity: grant is signed with an unknown key")
	ErrGrantSignature   = errors.New("identity: grant signature is invalid")
	ErrGrantExpired     = errors.New("identity: grant has expired")
	ErrGrantNotYetValid = errors.New("identity: grant is not valid yet")
	ErrGrantAudience    = errors.New("identity: grant is for another audience")
	ErrGrantBinding     = errors.New("identity: grant is bound to another SPIFFE ID")
	ErrGrantWiden       = errors.New("identity: delegation would widen the grant")
	ErrGrantDepth       = errors.New("identity: delegation depth limit reached")
)

// validClaims checks the claims that need no key or clock: required fields
// present and well-formed, the chain ending at the subject.
func (g *Grant) validClaims() error {
	switch {
	case g.ID == "":
		return errors.New("no jti")
	case g.Task == "":
		return errors.New("no task")
	case g.Tenant == "":
		return errors.New("no tenant")
	case g.Expiry == 0:
		return errors.New("no exp")
	case len(g.Chain) == 0 || g.Chain[len(g.Chain)-1] != g.Subject:
		return errors.New("chain does not end with sub")
	case g.Scopes.MaxTokens < 0:
		return errors.New("negative max_tokens")
	}
	if _, err := spiffeid.FromString(g.Subject); err != nil {
		return fmt.Errorf("sub: %w", err)
	}
	return nil
}

// checkTime checks nbf and exp against now, with leeway for clock skew.
func (g *Grant) checkTime(now time.Time, leeway time.Duration) error {
	t := now.Unix()
	l := int64(leeway / time.Second)
	if t >= g.Expiry+l {
		return fmt.Errorf("%w (at %s)", ErrGrantExpired, time.Unix(g.Expiry, 0).UTC().Format(time.RFC3339))
	}
	if g.NotBefore != 0 && t+l < g.NotBefore {
		return fmt.Errorf("%w (from %s)", ErrGrantNotYetValid, time.Unix(g.NotBefore, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckUse checks what must be checked on every use of an already verified
// grant: validity at now, and that the presenter is its subject.
func (g *Grant) CheckUse(presenter spiffeid.ID, now time.Time, leeway time.Duration) error {
	if err := g.checkTime(now, leeway); err != nil {
		return err
	}
	if presenter.String() != g.Subject {
		return fmt.Errorf("%w: bound to %s, presented by %s", ErrGrantBinding, g.Subject, presenter)
	}
	return nil
}
