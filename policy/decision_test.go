package policy

import (
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestParseDecision(t *testing.T) {
	tests := []struct {
		doc     string
		want    Decision
		wantErr bool
	}{
		{doc: `{"allow": true, "reasons": ["ok"], "obligations": {"max_tokens": 5, "tools": ["b", "a"], "require_approval": true, "provider": "p"}}`,
			want: Decision{Allow: true, Reasons: []string{"ok"},
				Obligations: Obligations{MaxTokens: 5, Tools: []string{"b", "a"}, RequireApproval: true, Provider: "p"}}},
		{doc: `{"allow": true, "reasons": [], "obligations": {"tools": []}}`,
			want: Decision{Allow: true, Reasons: []string{}, Obligations: Obligations{Tools: []string{}}}},
		{doc: `{"allow": false, "reasons": {"b", "a"}}`, want: Decision{Reasons: []string{"a", "b"}}},
		{doc: `{"allow": false}`, want: Decision{Reasons: []string{"denied by policy (no reason given)"}}},
		{doc: `{"allow": true}`, want: Decision{Allow: true}},
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
		got, err := parseDecision(ast.MustParseTerm(tt.doc).Value)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: got error %v, want error %v", tt.doc, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tt.doc, got, tt.want)
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
	f.Fuzz(func(t *testing.T, doc string) {
		term, err := ast.ParseTerm(doc)
		if err != nil || !term.IsGround() {
			return
		}
		d, err := parseDecision(term.Value)
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
	})
}
