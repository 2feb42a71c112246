package policy

import (
	"errors"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestParseDecision(t *testing.T) {
	tests := []struct {
		doc        string
		want       Decision
		wantScoped bool
		wantErr    bool
	}{
		{doc: `{"allow": true, "reasons": ["ok"], "obligations": {"max_tokens": 5, "tools": ["b", "a"], "require_approval": true, "provider": "p"}}`,
			want: Decision{Allow: true, Reasons: []string{"ok"},
				Obligations: Obligations{MaxTokens: 5, Tools: []string{"b", "a"}, RequireApproval: true, Provider: "p"}}},
		{doc: `{"allow": true, "reasons": [], "obligations": {"tools": []}}`,
			want: Decision{Allow: true, Reasons: []string{}, Obligations: Obligations{Tools: []string{}}}},
		{doc: `{"allow": false, "reasons": {"b", "a"}}`, want: Decision{Reasons: []string{"a", "b"}}},
		{doc: `{"allow": false}`, want: Decision{Reasons: []string{"denied by policy (no reason given)"}}},
		{doc: `{"allow": true}`, want: Decision{Allow: true}},
		{doc: `{"allow": true, "reasons": ["ok"], "obligations": {"max_tokens": 5}, "grant_scoped": true}`,
			want: Decision{Allow: true, Reasons: []string{"ok"}, Obligations: Obligations{MaxTokens: 5}}, wantScoped: true},
		{doc: `{"allow": true, "grant_scoped": false}`, want: Decision{Allow: true}},
		{doc: `{"allow": true, "grant_scoped": "yes"}`, wantErr: true},
		{doc: `{"allow": false, "reasons": ["no"], "grant_scoped": true}`, wantErr: true},
		{doc: `{"allow": true, "obligations": {"tools": []}, "grant_scoped": true}`, wantErr: true},
		{doc: `true`, wantErr: true},
		{doc: `{}`, wantErr: true},
		{doc: `{"allow": "true"}`, wantErr: true},
		{doc: `{"allow": true, "reason": ["typo"]}`, wantErr: true},
		{doc: `{"allow": true, 1: 2}`, wantErr: true},
		{doc: `{"allow": true, "reasons": "ok"}`, wantErr: true},
		{doc: `{"allow": true, "reasons": [1]}`, wantErr: true},
		{doc: `{"allow": true, "reasons": {1}}`, wantErr: true},
		{doc: `{"allow": true, "obligations": []}`, wantErr: true},
		{doc: `{"allow": true, "obligations": {1: 2}}`, wantErr: true},
		{doc: `{"allow": true, "obligations": {"max_token": 1}}`, wantErr: true},
		{doc: `{"allow": true, "obligations": {"max_tokens": "1"}}`, wantErr: true},
		{doc: `{"allow": true, "obligations": {"max_tokens": 1.5}}`, wantErr: true},
		{doc: `{"allow": true, "obligations": {"max_tokens": -1}}`, wantErr: true},
		{doc: `{"allow": true, "obligations": {"max_tokens": 1e40}}`, wantErr: true},
		{doc: `{"allow": true, "obligations": {"tools": "a"}}`, wantErr: true},
		{doc: `{"allow": true, "obligations": {"require_approval": 1}}`, wantErr: true},
		{doc: `{"allow": true, "obligations": {"provider": null}}`, wantErr: true},
	}
	for _, tt := range tests {
		got, scoped, err := parseDecision(ast.MustParseTerm(tt.doc).Value)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: got error %v, want error %v", tt.doc, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && (!reflect.DeepEqual(got, tt.want) || scoped != tt.wantScoped) {
			t.Errorf("%s:\n got %#v scoped %v\nwant %#v scoped %v", tt.doc, got, scoped, tt.want, tt.wantScoped)
		}
	}
}

// FuzzParseDecision: any Rego value either parses into a decision that
// re-encodes to an equivalent document, or is rejected; it never panics and
// never turns a non-true allow into an allow.
func FuzzParseDecision(f *testing.F) {
	f.Add(`{"allow": true, "reasons": ["ok"], "obligations": {"max_tokens": 5, "tools": ["a"]}}`)
	f.Add(`{"allow": false, "reasons": {"x"}}`)
	f.Add(`{"allow": 1}`)
	f.Add(`{"allow": true, "reasons": ["ok"], "obligations": {"max_tokens": 5}, "grant_scoped": true}`)
	f.Fuzz(func(t *testing.T, doc string) {
		term, err := ast.ParseTerm(doc)
		if err != nil || !term.IsGround() {
			return
		}
		d, scoped, err := parseDecision(term.Value)
		if err != nil {
			return
		}
		obj := term.Value.(ast.Object)
		if allow := obj.Get(ast.InternedTerm("allow")); d.Allow != (allow.Value.Compare(ast.Boolean(true)) == 0) {
			t.Errorf("%s: got allow %v", doc, d.Allow)
		}
		if !d.Allow && len(d.Reasons) == 0 {
			t.Errorf("%s: deny without reasons", doc)
		}
		if scoped && (!d.Allow || d.Obligations.Tools != nil) {
			t.Errorf("%s: grant_scoped on a deny or with tools", doc)
		}
	})
}

func TestScopeToGrant(t *testing.T) {
	allow := func(maxTokens int) Decision {
		return Decision{Allow: true, Reasons: []string{"model m is allowed"}, Obligations: Obligations{MaxTokens: maxTokens, RequireApproval: true}}
	}
	grant := func(maxTokens int, tools ...string) *Grant {
		return &Grant{ID: "g1", Scopes: Scopes{Models: []string{"m"}, Tools: tools, MaxTokens: maxTokens}}
	}
	scoped := func(maxTokens int, tools ...string) Decision {
		return Decision{Allow: true, Reasons: []string{"model m is allowed under grant g1"},
			Obligations: Obligations{MaxTokens: maxTokens, Tools: append([]string{}, tools...), RequireApproval: true}}
	}
	tests := []struct {
		name    string
		d       Decision
		g       *Grant
		want    Decision
		wantErr error
	}{
		{"grant caps, kind does not", allow(0), grant(512), scoped(512), nil},
		{"kind caps, grant does not", allow(1024), grant(0), scoped(1024), nil},
		{"grant cap lower", allow(1024), grant(512), scoped(512), nil},
		{"kind cap lower", allow(256), grant(512), scoped(256), nil},
		{"equal caps", allow(512), grant(512), scoped(512), nil},
		{"no cap at all", allow(0), grant(0), scoped(0), nil},
		{"tools sorted, duplicates kept", allow(0), grant(0, "search", "browse", "search"), scoped(0, "browse", "search", "search"), nil},
		{"grant cap beyond maxNumber, kind's lower", allow(1024), grant(maxNumber + 1), scoped(1024), nil},
		{"no grant", allow(0), nil, Decision{}, ErrMalformed},
		{"negative grant cap", allow(0), grant(-1), Decision{}, ErrUndefined},
		{"grant cap beyond maxNumber", allow(0), grant(maxNumber + 1), Decision{}, ErrMalformed},
	}
	for _, tt := range tests {
		var g *Grant
		if tt.g != nil {
			gc := *tt.g
			gc.Scopes.Tools = append([]string(nil), tt.g.Scopes.Tools...)
			g = &gc
		}
		got := tt.d
		err := scopeToGrant(&got, g)
		if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
			t.Errorf("%s: got error %v, want %v", tt.name, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tt.name, got, tt.want)
		}
		if g != nil && !reflect.DeepEqual(g.Scopes.Tools, tt.g.Scopes.Tools) {
			t.Errorf("%s: the grant's tools changed to %v", tt.name, g.Scopes.Tools)
		}
	}
}
