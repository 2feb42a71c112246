package policy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// referenceEngine loads the default bundle's data with the Rego of
// testdata/reference-rego: the default bundle as it was before its rules
// were reshaped for speed (lookup tables, fast branches in decision).
func referenceEngine(t *testing.T) *Engine {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(DefaultBundle(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(name) != "data.json" {
			return err
		}
		bs, err := fs.ReadFile(DefaultBundle(), name)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), bs, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := filepath.Glob("testdata/reference-rego/*.rego")
	if err != nil || len(refs) == 0 {
		t.Fatalf("reference rego: %v (%d files)", err, len(refs))
	}
	for _, name := range refs {
		bs, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, filepath.Base(name), string(bs))
	}
	return newEngine(t, Options{BundleDir: dir, CacheSize: -1})
}

// equivalenceInputs crosses actions, kinds, tenants, models, grants, users,
// tools and caps: every branch of the default bundle, and the inputs around
// each branch's edges.
func equivalenceInputs() []*Input {
	var ins []*Input
	alice := &User{Subject: "spiffe://dev.portcullis.local/human/alice", Issuer: "i", Kind: "human"}
	bob := &User{Subject: "spiffe://dev.portcullis.local/human/bob", Issuer: "i", Kind: "human"}
	grants := []*Grant{nil,
		{ID: "g1", Task: "t1", Purpose: "support", Tenant: "acme", Scopes: Scopes{Models: []string{"gpt-4o-mini"}}},
		{ID: "g2", Task: "t1", Purpose: "support", Tenant: "acme", Scopes: Scopes{Models: []string{"gpt-4o-mini", "gpt-4o", "o3-mini"}, Tools: []string{"search", "issue_refund"}, MaxTokens: 512}},
		{ID: "g3", Task: "t1", Purpose: "research", Tenant: "acme", Scopes: Scopes{Models: []string{"o3-mini", "gpt-4o"}, Tools: []string{"browse"}, MaxTokens: 4000}},
		{ID: "g4", Task: "t1", Purpose: "support", Tenant: "globex", Scopes: Scopes{Models: []string{"gpt-4o-mini"}, MaxTokens: 100}},
		{ID: "g5", Task: "t1", Purpose: "nosuch", Tenant: "acme", Scopes: Scopes{Models: []string{"gpt-4o-mini"}, MaxTokens: -1}},
	}
	for _, kind := range []string{"human", "application", "agent", "robot"} {
		for _, tenant := range []string{"acme", "globex", "initech"} {
			for _, model := range []string{"gpt-4o-mini", "gpt-4o", "o3-mini", "gpt-9"} {
				for _, g := range grants {
					for _, u := range []*User{nil, alice, bob} {
						for _, tools := range [][]string{nil, {"search"}, {"issue_refund", "search"}} {
							in := llm(kind, tenant, model)
							in.Request.Tools = tools
							in.Request.MaxTokens = 2000
							in.User = u
							if g != nil {
								gc := *g
								in.Grant = &gc
							}
							ins = append(ins, in)
							if len(tools) > 0 {
								// The same as a token count, which needs no
								// approval for the tools it lists.
								count := *in
								req := *in.Request
								req.API, req.MaxTokens = "anthropic.count_tokens", 0
								count.Request = &req
								ins = append(ins, &count)
							}
						}
					}
				}
			}
			p := llm(kind, tenant, "").Principal
			for _, g := range grants {
				for _, action := range []string{"grant.mint", "grant.delegate", "task.complete", "grant.revoke", "admin.reload", "llm.summon", ""} {
					ins = append(ins, &Input{Action: action, Principal: p, Grant: g, Chain: []string{p.SPIFFEID}})
				}
			}
			for _, tool := range []Tool{{Name: "search"}, {Name: "issue_refund"}, {Name: "forecast", Server: "weather"}, {Name: "delete_records", Server: "tools"}} {
				for _, g := range grants[:3] {
					ins = append(ins, &Input{Action: "tool.call", Principal: p, Tool: &tool, Grant: g})
				}
			}
			ins = append(ins,
				&Input{Action: "approval.decide", Principal: p, Approval: &Approval{ID: "a1", Requester: "spiffe://example.org/x", Tenant: "acme", Action: "llm.invoke"}},
				&Input{Action: "approval.decide", Principal: p, Approval: &Approval{ID: "a1", Requester: p.SPIFFEID, Tenant: tenant, Action: "llm.invoke"}},
				&Input{Action: "llm.invoke", Principal: p},
			)
		}
	}
	return ins
}

// TestDefaultBundleMatchesReference: the reshaped default bundle decides
// every input exactly as the reference bundle does (allow, reasons,
// obligations, and the class of any error).
func TestDefaultBundleMatchesReference(t *testing.T) {
	ref := referenceEngine(t)
	cur := newEngine(t, Options{CacheSize: -1})
	ctx := context.Background()
	allows := 0
	ins := equivalenceInputs()
	for i, in := range ins {
		want, wantErr := ref.Decide(ctx, in)
		got, gotErr := cur.Decide(ctx, in)
		want.Revision, got.Revision = "", ""
		if !reflect.DeepEqual(got, want) || errClass(gotErr) != errClass(wantErr) {
			t.Errorf("input %d %s: got %+v (err %v), want %+v (err %v)", i, describe(in), got, gotErr, want, wantErr)
		}
		if want.Allow {
			allows++
		}
	}
	if allows == 0 || allows == len(ins) {
		t.Fatalf("%d of %d inputs allowed: the table does not exercise both outcomes", allows, len(ins))
	}
	t.Logf("%d inputs, %d allowed, identical decisions", len(ins), allows)
}

func errClass(err error) error {
	for _, class := range []error{ErrInput, ErrTimeout, ErrEval, ErrUndefined, ErrMalformed} {
		if errors.Is(err, class) {
			return class
		}
	}
	return err
}

func describe(in *Input) string {
	var b strings.Builder
	b.WriteString(in.Action + " " + in.Principal.Kind + "/" + in.Principal.Tenant)
	if in.Request != nil {
		b.WriteString(" model=" + in.Request.Model + " tools=" + strings.Join(in.Request.Tools, ","))
	}
	if in.Grant != nil {
		b.WriteString(" grant=" + in.Grant.ID)
	}
	if in.User != nil {
		b.WriteString(" user=" + in.User.Subject)
	}
	return b.String()
}
