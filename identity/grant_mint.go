package identity

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MintRequest describes a grant to mint for a task. The caller (the gateway,
// after policy allowed grant.mint and applied its obligations) fills it in.
type MintRequest struct {
	Subject  spiffeid.ID // the workload the grant is bound to
	Audience string
	Task     string
	Tenant   string
	Purpose  string
	Scopes   Scopes
	TTL      time.Duration
	User     *UserInfo
}

// NewGrantID returns a fresh grant id: "g_" and 128 random bits in hex.
func NewGrantID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "g_" + hex.EncodeToString(b[:])
}

// Mint builds the claims of a new root grant, valid from now for req.TTL.
// It signs nothing: [GrantKeyring.Sign] does.
func Mint(req MintRequest, now time.Time) (*Grant, error) {
	switch {
	case req.Subject.IsZero():
		return nil, errors.New("identity: mint grant: no subject")
	case req.Task == "" || req.Tenant == "":
		return nil, errors.New("identity: mint grant: task and tenant are required")
	case req.TTL <= 0:
		return nil, errors.New("identity: mint grant: TTL must be positive")
	case req.Scopes.MaxTokens < 0:
		return nil, errors.New("identity: mint grant: negative max_tokens")
	}
	t := now.Unix()
	return &Grant{
		ID:        NewGrantID(),
		Subject:   req.Subject.String(),
		Audience:  req.Audience,
		IssuedAt:  t,
		NotBefore: t,
		Expiry:    now.Add(req.TTL).Unix(),
		Task:      req.Task,
		Tenant:    req.Tenant,
		Purpose:   req.Purpose,
		Scopes:    cloneScopes(req.Scopes),
		Chain:     []string{req.Subject.String()},
		User:      req.User,
	}, nil
}

// DelegateRequest is what the holder of a grant asks to hand on.
type DelegateRequest struct {
	// To is the workload that will hold the new grant.
	To Principal
	// Scopes must be covered by the parent's. MaxTokens 0 inherits the
	// parent's budget.
	Scopes Scopes
	// TTL is the new grant's lifetime; 0 means until the parent expires.
	// A TTL reaching past the parent's expiry is refused, not trimmed.
	TTL time.Duration
	// MaxDepth is the most delegations a chain may hold.
	MaxDepth int
}

// Delegate builds the claims of a grant derived from parent for req.To. It
// enforces that delegation only narrows: scopes covered by the parent's,
// expiry no later than the parent's, the same tenant (the new holder's
// principal tenant too), task, purpose and user, and a chain no deeper than
// req.MaxDepth. Refusals wrap ErrGrantWiden or ErrGrantDepth.
func Delegate(parent *Grant, req DelegateRequest, now time.Time) (*Grant, error) {
	to := req.To.ID.String()
	scopes := cloneScopes(req.Scopes)
	if scopes.MaxTokens == 0 {
		scopes.MaxTokens = parent.Scopes.MaxTokens
	}
	exp := parent.Expiry
	if req.TTL > 0 {
		exp = now.Add(req.TTL).Unix()
	}
	switch {
	case req.To.ID.IsZero():
		return nil, errors.New("identity: delegate grant: no target")
	case req.TTL < 0:
		return nil, errors.New("identity: delegate grant: negative TTL")
	case parent.Depth()+1 > req.MaxDepth:
		return nil, fmt.Errorf("%w: grant %s is at depth %d, the limit is %d", ErrGrantDepth, parent.ID, parent.Depth(), req.MaxDepth)
	case req.To.Tenant != parent.Tenant:
		return nil, fmt.Errorf("%w: %s is of tenant %q, the grant of tenant %q", ErrGrantWiden, to, req.To.Tenant, parent.Tenant)
	case slices.Contains(parent.Chain, to):
		return nil, fmt.Errorf("%w: %s is already in the chain", ErrGrantWiden, to)
	case !parent.Scopes.Covers(scopes):
		return nil, fmt.Errorf("%w: requested scopes %s exceed the parent's %s", ErrGrantWiden, scopes, parent.Scopes)
	case exp > parent.Expiry:
		return nil, fmt.Errorf("%w: expiry %s is after the parent's %s", ErrGrantWiden,
			time.Unix(exp, 0).UTC().Format(time.RFC3339), time.Unix(parent.Expiry, 0).UTC().Format(time.RFC3339))
	}
	t := now.Unix()
	return &Grant{
		ID:        NewGrantID(),
		Subject:   to,
		Audience:  parent.Audience,
		IssuedAt:  t,
		NotBefore: t,
		Expiry:    exp,
		Task:      parent.Task,
		Tenant:    parent.Tenant,
		Purpose:   parent.Purpose,
		Scopes:    scopes,
		Chain:     append(slices.Clip(slices.Clone(parent.Chain)), to),
		Parent:    parent.ID,
		User:      parent.User,
	}, nil
}

func cloneScopes(s Scopes) Scopes {
	return Scopes{Models: slices.Clone(s.Models), Tools: slices.Clone(s.Tools), MaxTokens: s.MaxTokens}
}

// String formats scopes for messages: models=[a b] tools=[c] max_tokens=5.
func (s Scopes) String() string {
	return fmt.Sprintf("models=%v tools=%v max_tokens=%d", s.Models, s.Tools, s.MaxTokens)
}
