package policy

import (
	"errors"
	"fmt"

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
// keys and types. Unknown keys are an error, so that a misspelt obligation
// denies instead of being silently dropped.
func parseDecision(v ast.Value) (Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return Decision{}, fmt.Errorf("decision is %s, want object", ast.ValueName(v))
	}
	var d Decision
	var seenAllow bool
	err := obj.Iter(func(k, val *ast.Term) error {
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
			d.Obligations = o
		default:
			return fmt.Errorf("unknown key %q", string(key))
		}
		return nil
	})
	if err != nil {
		return Decision{}, err
	}
	if !seenAllow {
		return Decision{}, errors.New("no allow")
	}
	if !d.Allow && len(d.Reasons) == 0 {
		d.Reasons = []string{"denied by policy (no reason given)"}
	}
	return d, nil
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
