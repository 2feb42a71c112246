package policy

import (
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Object keys of the input document, built once.
var (
	kAction      = ast.InternedTerm("action")
	kPrincipal   = ast.InternedTerm("principal")
	kUser        = ast.InternedTerm("user")
	kChain       = ast.InternedTerm("chain")
	kGrant       = ast.InternedTerm("grant")
	kRequest     = ast.InternedTerm("request")
	kTool        = ast.InternedTerm("tool")
	kApproval    = ast.InternedTerm("approval")
	kSPIFFEID    = ast.InternedTerm("spiffe_id")
	kTrustDomain = ast.InternedTerm("trust_domain")
	kKind        = ast.InternedTerm("kind")
	kTenant      = ast.InternedTerm("tenant")
	kName        = ast.InternedTerm("name")
	kSubject     = ast.InternedTerm("subject")
	kIssuer      = ast.InternedTerm("issuer")
	kID          = ast.InternedTerm("id")
	kTask        = ast.InternedTerm("task")
	kPurpose     = ast.InternedTerm("purpose")
	kScopes      = ast.InternedTerm("scopes")
	kExpiresAt   = ast.InternedTerm("expires_at")
	kModels      = ast.InternedTerm("models")
	kTools       = ast.InternedTerm("tools")
	kMaxTokens   = ast.InternedTerm("max_tokens")
	kAPI         = ast.InternedTerm("api")
	kModel       = ast.InternedTerm("model")
	kProvider    = ast.InternedTerm("provider")
	kStream      = ast.InternedTerm("stream")
	kToolResults = ast.InternedTerm("tool_results")
	kPrompt      = ast.InternedTerm("prompt")
	kBytes       = ast.InternedTerm("bytes")
	kMessages    = ast.InternedTerm("messages")
	kServer      = ast.InternedTerm("server")
	kRequester   = ast.InternedTerm("requester")
)

// value builds the input document directly as an ast.Value, with no JSON
// round trip. It must produce exactly what ast.InterfaceToValue produces from
// the struct's JSON encoding; TestValueMatchesJSON and FuzzValueMatchesJSON
// hold it to that.
func (in *Input) value() ast.Value {
	var b builder
	b.alloc(in)
	str, num, obj := b.str, b.num, b.obj
	items := make([][2]*ast.Term, 0, 8)
	items = append(items,
		ast.Item(kAction, str(in.Action)),
		ast.Item(kPrincipal, obj(
			ast.Item(kSPIFFEID, str(in.Principal.SPIFFEID)),
			ast.Item(kTrustDomain, str(in.Principal.TrustDomain)),
			ast.Item(kKind, str(in.Principal.Kind)),
			ast.Item(kTenant, str(in.Principal.Tenant)),
			ast.Item(kName, str(in.Principal.Name)),
		)),
	)
	if u := in.User; u != nil {
		items = append(items, ast.Item(kUser, obj(
			ast.Item(kSubject, str(u.Subject)),
			ast.Item(kIssuer, str(u.Issuer)),
			ast.Item(kKind, str(u.Kind)),
		)))
	}
	if len(in.Chain) > 0 {
		items = append(items, ast.Item(kChain, b.strs(in.Chain)))
	}
	if g := in.Grant; g != nil {
		items = append(items, ast.Item(kGrant, obj(
			ast.Item(kID, str(g.ID)),
			ast.Item(kTask, str(g.Task)),
			ast.Item(kPurpose, str(g.Purpose)),
			ast.Item(kTenant, str(g.Tenant)),
			ast.Item(kScopes, obj(
				ast.Item(kModels, b.strs(g.Scopes.Models)),
				ast.Item(kTools, b.strs(g.Scopes.Tools)),
				ast.Item(kMaxTokens, num(int64(g.Scopes.MaxTokens))),
			)),
			ast.Item(kExpiresAt, num(g.ExpiresAt)),
		)))
	}
	if r := in.Request; r != nil {
		items = append(items, ast.Item(kRequest, obj(
			ast.Item(kAPI, str(r.API)),
			ast.Item(kModel, str(r.Model)),
			ast.Item(kProvider, str(r.Provider)),
			ast.Item(kStream, ast.InternedTerm(r.Stream)),
			ast.Item(kTools, b.strs(r.Tools)),
			ast.Item(kToolResults, b.strs(r.ToolResults)),
			ast.Item(kMaxTokens, num(int64(r.MaxTokens))),
			ast.Item(kPrompt, obj(
				ast.Item(kBytes, num(int64(r.Prompt.Bytes))),
				ast.Item(kMessages, num(int64(r.Prompt.Messages))),
			)),
		)))
	}
	if t := in.Tool; t != nil {
		items = append(items, ast.Item(kTool, obj(
			ast.Item(kName, str(t.Name)),
			ast.Item(kServer, str(t.Server)),
		)))
	}
	if a := in.Approval; a != nil {
		items = append(items, ast.Item(kApproval, obj(
			ast.Item(kID, str(a.ID)),
			ast.Item(kRequester, str(a.Requester)),
			ast.Item(kTenant, str(a.Tenant)),
			ast.Item(kAction, str(a.Action)),
			ast.Item(kUser, str(a.User)),
		)))
	}
	return ast.NewObject(items...)
}

// builder makes the input's terms from one slab, so that building the input
// costs a few allocations rather than one or two per field.
type builder struct {
	terms []ast.Term
	ptrs  []*ast.Term
}

func (b *builder) alloc(in *Input) {
	lists := len(in.Chain)
	if g := in.Grant; g != nil {
		lists += len(g.Scopes.Models) + len(g.Scopes.Tools)
	}
	if r := in.Request; r != nil {
		lists += len(r.Tools) + len(r.ToolResults)
	}
	// 23 strings, 8 objects, 5 arrays and 5 numbers at most, plus list items.
	b.terms = make([]ast.Term, 41+lists)
	b.ptrs = make([]*ast.Term, lists)
}

func (b *builder) term(v ast.Value) *ast.Term {
	if len(b.terms) == 0 {
		return ast.NewTerm(v)
	}
	t := &b.terms[0]
	b.terms = b.terms[1:]
	t.Value = v
	return t
}

func (b *builder) str(s string) *ast.Term {
	if s == "" {
		return ast.InternedEmptyString
	}
	return b.term(ast.String(s))
}

func (b *builder) num(n int64) *ast.Term {
	if n >= 0 && n < 512 {
		return ast.InternedTerm(int(n))
	}
	return b.term(ast.Number(strconv.FormatInt(n, 10)))
}

func (b *builder) obj(items ...[2]*ast.Term) *ast.Term {
	return b.term(ast.NewObject(items...))
}

func (b *builder) strs(ss []string) *ast.Term {
	if len(ss) == 0 {
		return ast.InternedEmptyArray
	}
	var ts []*ast.Term
	if len(b.ptrs) >= len(ss) {
		ts, b.ptrs = b.ptrs[:len(ss):len(ss)], b.ptrs[len(ss):]
	} else {
		ts = make([]*ast.Term, len(ss))
	}
	for i, s := range ss {
		ts[i] = b.str(s)
	}
	return b.term(ast.NewArray(ts...))
}
