package identity

import "fmt"

// Kind says what sort of principal is behind a SPIFFE ID. Policy treats the
// kinds differently: only a human may approve a parked action, and agents are
// held to their task grants.
type Kind string

// The principal kinds. The string values are part of the policy input contract
// (input.principal.kind) and must not change.
const (
	KindHuman       Kind = "human"
	KindApplication Kind = "application"
	KindAgent       Kind = "agent"
)

// ParseKind parses one of "human", "application" or "agent". Matching is exact:
// configuration that says "Agent" is a mistake worth reporting.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if !k.Valid() {
		return "", fmt.Errorf("identity: unknown principal kind %q (want %q, %q or %q)",
			s, KindHuman, KindApplication, KindAgent)
	}
	return k, nil
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindHuman, KindApplication, KindAgent:
		return true
	}
	return false
}

// String returns the kind's name.
func (k Kind) String() string { return string(k) }
