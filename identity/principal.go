package identity

import "github.com/spiffe/go-spiffe/v2/spiffeid"

// Principal is who is behind a verified SPIFFE ID: the ID itself, what kind of
// principal it names, the tenant it acts for and its short name. A Principal is
// only ever built by a [Resolver] from an ID that the TLS layer has verified;
// nothing a client sends in a header can produce one.
type Principal struct {
	ID     spiffeid.ID
	Kind   Kind
	Tenant string
	Name   string
}

// TrustDomain returns the trust domain of the principal's SPIFFE ID.
func (p Principal) TrustDomain() spiffeid.TrustDomain { return p.ID.TrustDomain() }

// String returns a short human-readable form, e.g. "agent acme/support-bot (spiffe://…)".
func (p Principal) String() string {
	return string(p.Kind) + " " + p.Tenant + "/" + p.Name + " (" + p.ID.String() + ")"
}
