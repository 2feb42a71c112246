package policy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Decision is the answer to one Input: the value of data.portcullis.decision,
// plus the revision of the bundle that produced it and whether it came from
// the cache.
//
// Decisions returned by Engine.Decide may share their slices with the
// decision cache: treat Reasons and Obligations.Tools as read-only.
type Decision struct {
	Allow bool `json:"allow"`
	// Reasons explain the decision in a few words each; a deny always has at
	// least one.
	Reasons     []string    `json:"reasons"`
	Obligations Obligations `json:"obligations"`
	// Revision is the bundle revision that decided (set by the engine).
	Revision string `json:"revision"`
	// CacheHit reports that the decision was answered from the cache.
	CacheHit bool `json:"cache_hit"`
}

// Obligations are conditions an allow comes with; the caller must apply them.
type Obligations struct {
	// MaxTokens caps the output tokens; 0 means no cap.
	MaxTokens int `json:"max_tokens"`
	// Tools, when non-nil, is the only set of tools that may be offered or
	// called (possibly empty: none). nil means the policy does not narrow tools.
	Tools []string `json:"tools"`
	// RequireApproval parks the action until a human approves it.
	RequireApproval bool `json:"require_approval"`
	// Provider, when not empty, pins the upstream provider.
	Provider string `json:"provider"`
}

// maxNumber caps numeric obligations so that a policy cannot overflow int.
const maxNumber = 1 << 31

// parseDecision reads a decision document strictly: allow must be a boolean,
// reasons an array of strings, obligations an object with only the known
// keys and types, grant_scoped a boolean. Unknown keys are an error, so that
// a misspelt obligation denies instead of being silently dropped.
//
// A decision with grant_scoped true is returned as the bundle wrote it, with
// scoped set: scopeToGrant completes it from the input's grant.
func parseDecision(v ast.Value) (d Decision, scoped bool, err error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return Decision{}, false, fmt.Errorf("decision is %s, want object", ast.ValueName(v))
	}
	var seenAllow, seenTools bool
	err = obj.Iter(func(k, val *ast.Term) error {
		key, ok := k.Value.(ast.String)
		if !ok {
			return fmt.Errorf("key %v is not a string", k)
		}
		switch key {
		case "allow":
			b, ok := val.Value.(ast.Boolean)
			if !ok {
				return fmt.Errorf("allow is %s, want boolean", ast.ValueName(val.Value))
			}
			d.Allow, seenAllow = bool(b), true
		case "reasons":
			rs, err := stringList("reasons", val.Value)
			if err != nil {
				return err
			}
			d.Reasons = rs
		case "obligations":
			o, err := parseObligations(val.Value)
			if err != nil {
				return err
			}
			d.Obligations, seenTools = o, o.Tools != nil
		case "grant_scoped":
			b, ok := val.Value.(ast.Boolean)
			if !ok {
				return fmt.Errorf("grant_scoped is %s, want boolean", ast.ValueName(val.Value))
			}
			scoped = bool(b)
		default:
			return fmt.Errorf("unknown key %q", string(key))
		}
		return nil
	})
	switch {
	case err != nil:
		return Decision{}, false, err
	case !seenAllow:
		return Decision{}, false, errors.New("no allow")
	case scoped && !d.Allow:
		return Decision{}, false, errors.New("grant_scoped on a deny")
	case scoped && seenTools:
		return Decision{}, false, errors.New("grant_scoped with obligations.tools: the grant's scopes set the tools")
	}
	if !d.Allow && len(d.Reasons) == 0 {
		d.Reasons = []string{"denied by policy (no reason given)"}
	}
	return d, scoped, nil
}

// grantReason is what scopeToGrant appends to each reason, before the
// grant's id.
const grantReason = " under grant "

// scopeToGrant narrows a grant_scoped allow to the input's grant g, as the
// default bundle's general rules do: each reason gets " under grant <id>",
// the tools become the grant's (sorted, as Rego's sort leaves them), and
// the token cap the lower of the decision's and the grant's (0 = no cap).
//
// Its errors carry their class: no grant, or a cap beyond maxNumber, make
// the decision malformed (ErrMalformed); a negative grant cap, which no
// cap can be the lower of, leaves it undefined (ErrUndefined), as the
// default bundle's grant_cap does.
func scopeToGrant(d *Decision, g *Grant) error {
	if g == nil {
		return fmt.Errorf("%w: grant_scoped without an input grant", ErrMalformed)
	}
	k, c := d.Obligations.MaxTokens, g.Scopes.MaxTokens
	switch {
	case c < 0:
		return fmt.Errorf("%w: grant_scoped with grant max_tokens %d", ErrUndefined, c)
	case c > 0 && (k == 0 || c < k):
		if c > maxNumber {
			return fmt.Errorf("%w: grant_scoped with grant max_tokens %d, not in [0, %d]", ErrMalformed, c, maxNumber)
		}
		k = c
	}
	reasons := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		reasons[i] = r + grantReason + g.ID
	}
	tools := make([]string, len(g.Scopes.Tools))
	copy(tools, g.Scopes.Tools)
	slices.Sort(tools)
	d.Reasons, d.Obligations.Tools, d.Obligations.MaxTokens = reasons, tools, k
	return nil
}

func parseObligations(v ast.Value) (Obligations, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return Obligations{}, fmt.Errorf("obligations is %s, want object", ast.ValueName(v))
	}
	var o Obligations
	err := obj.Iter(func(k, val *ast.Term) error {
		key, ok := k.Value.(ast.String)
		if !ok {
			return fmt.Errorf("obligations key %v is not a string", k)
		}
		switch key {
		case "max_tokens":
			n, ok := val.Value.(ast.Number)
			if !ok {
				return fmt.Errorf("obligations.max_tokens is %s, want number", ast.ValueName(val.Value))
			}
			i, ok := n.Int64()
			if !ok || i < 0 || i > maxNumber {
				return fmt.Errorf("obligations.max_tokens %v is not an integer in [0, %d]", n, maxNumber)
			}
			o.MaxTokens = int(i)
		case "tools":
			ts, err := stringList("obligations.tools", val.Value)
			if err != nil {
				return err
			}
			if ts == nil {
				ts = []string{}
			}
			o.Tools = ts
		case "require_approval":
			b, ok := val.Value.(ast.Boolean)
			if !ok {
				return fmt.Errorf("obligations.require_approval is %s, want boolean", ast.ValueName(val.Value))
			}
			o.RequireApproval = bool(b)
		case "provider":
			s, ok := val.Value.(ast.String)
			if !ok {
				return fmt.Errorf("obligations.provider is %s, want string", ast.ValueName(val.Value))
			}
			o.Provider = string(s)
		default:
			return fmt.Errorf("unknown obligation %q", string(key))
		}
		return nil
	})
	return o, err
}

// stringList accepts an array or a set of strings (sets come out sorted).
func stringList(name string, v ast.Value) ([]string, error) {
	var out []string
	add := func(t *ast.Term) error {
		s, ok := t.Value.(ast.String)
		if !ok {
			return fmt.Errorf("%s holds %s, want string", name, ast.ValueName(t.Value))
		}
		out = append(out, string(s))
		return nil
	}
	switch x := v.(type) {
	case *ast.Array:
		out = make([]string, 0, x.Len())
		for i := range x.Len() {
			if err := add(x.Elem(i)); err != nil {
				return nil, err
			}
		}
	case ast.Set:
		out = make([]string, 0, x.Len())
		if err := x.Sorted().Iter(func(t *ast.Term) error { return add(t) }); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s is %s, want array of strings", name, ast.ValueName(v))
	}
	return out, nil
}
