package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// viaJSON is the independent path: the Input's JSON decoded the way OPA
// decodes `opa eval -i input.json`.
func viaJSON(t testing.TB, in *Input) ast.Value {
	t.Helper()
	bs, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := util.UnmarshalJSON(bs, &doc); err != nil {
		t.Fatal(err)
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValueMatchesJSON(t *testing.T) {
	full := fullInput()
	empty := &Input{}
	nilLists := fullInput()
	nilLists.Chain, nilLists.Grant.Scopes.Models, nilLists.Grant.Scopes.Tools = nil, nil, nil
	nilLists.Request.Tools, nilLists.Request.ToolResults = nil, []string{}
	for name, in := range map[string]*Input{"full": full, "empty": empty, "nil lists": nilLists,
		"llm": llm("agent", "acme", "gpt-4o-mini")} {
		got, want := in.value(), viaJSON(t, in)
		if got.Compare(want) != 0 {
			t.Errorf("%s:\n got %v\nwant %v", name, got, want)
		}
	}
}

func FuzzValueMatchesJSON(f *testing.F) {
	bs, _ := json.Marshal(fullInput())
	f.Add(bs)
	f.Add([]byte(`{"action":"llm.invoke","principal":{"kind":"agent"},"request":{"tools":null}}`))
	f.Add([]byte(`{"grant":{"scopes":{"models":[],"max_tokens":-3},"expires_at":99}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in Input
		if json.Unmarshal(data, &in) != nil {
			return
		}
		if got, want := in.value(), viaJSON(t, &in); got.Compare(want) != 0 {
			t.Errorf("\n got %v\nwant %v", got, want)
		}
	})
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update if the change is intended):\n got %s\nwant %s", path, got, want)
	}
}

// TestContractGolden pins the JSON of a sample input and of the default
// bundle's decision for it: the documented contract.
func TestContractGolden(t *testing.T) {
	in := &Input{
		Action: "llm.invoke",
		Principal: Principal{SPIFFEID: "spiffe://example.org/acme/agent/triage", TrustDomain: "example.org",
			Kind: "agent", Tenant: "acme", Name: "triage"},
		User:  &User{Subject: "alice@acme.example", Issuer: "https://idp.acme.example", Kind: "human"},
		Chain: []string{"spiffe://example.org/acme/human/alice", "spiffe://example.org/acme/agent/triage"},
		Grant: &Grant{ID: "gr_01J2", Task: "triage ticket 4711", Purpose: "support", Tenant: "acme",
			Scopes:    Scopes{Models: []string{"gpt-4o-mini"}, Tools: []string{"search_kb", "create_ticket"}, MaxTokens: 512},
			ExpiresAt: 1767225600},
		Request: &Request{API: "chat.completions", Model: "gpt-4o-mini", Provider: "openai", Stream: true,
			Tools: []string{"search_kb"}, MaxTokens: 2000, Prompt: Prompt{Bytes: 1834, Messages: 4}},
	}
	inJSON, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "input.golden", append(inJSON, '\n'))

	e := newEngine(t, Options{})
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	d.Revision = "REVISION" // changes with every bundle edit
	dJSON, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "decision.golden", append(dJSON, '\n'))

	// The golden input decodes back to the same Input.
	var back Input
	if err := json.Unmarshal(inJSON, &back); err != nil {
		t.Fatal(err)
	}
	if back.value().Compare(in.value()) != 0 {
		t.Error("input.golden does not decode back to the sample input")
	}
}
