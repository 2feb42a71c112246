package policy

import "github.com/open-policy-agent/opa/v1/ast"

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
	items := make([][2]*ast.Term, 0, 8)
	items = append(items,
		ast.Item(kAction, str(in.Action)),
		ast.Item(kPrincipal, ast.NewTerm(ast.NewObject(
			ast.Item(kSPIFFEID, str(in.Principal.SPIFFEID)),
			ast.Item(kTrustDomain, str(in.Principal.TrustDomain)),
			ast.Item(kKind, str(in.Principal.Kind)),
			ast.Item(kTenant, str(in.Principal.Tenant)),
			ast.Item(kName, str(in.Principal.Name)),
		))),
	)
	if u := in.User; u != nil {
		items = append(items, ast.Item(kUser, ast.NewTerm(ast.NewObject(
			ast.Item(kSubject, str(u.Subject)),
			ast.Item(kIssuer, str(u.Issuer)),
			ast.Item(kKind, str(u.Kind)),
		))))
	}
	if len(in.Chain) > 0 {
		items = append(items, ast.Item(kChain, strs(in.Chain)))
	}
	if g := in.Grant; g != nil {
		items = append(items, ast.Item(kGrant, ast.NewTerm(ast.NewObject(
			ast.Item(kID, str(g.ID)),
			ast.Item(kTask, str(g.Task)),
			ast.Item(kPurpose, str(g.Purpose)),
			ast.Item(kTenant, str(g.Tenant)),
			ast.Item(kScopes, ast.NewTerm(ast.NewObject(
				ast.Item(kModels, strs(g.Scopes.Models)),
				ast.Item(kTools, strs(g.Scopes.Tools)),
				ast.Item(kMaxTokens, ast.InternedTerm(g.Scopes.MaxTokens)),
			))),
			ast.Item(kExpiresAt, ast.InternedTerm(g.ExpiresAt)),
		))))
	}
	if r := in.Request; r != nil {
		items = append(items, ast.Item(kRequest, ast.NewTerm(ast.NewObject(
			ast.Item(kAPI, str(r.API)),
			ast.Item(kModel, str(r.Model)),
			ast.Item(kProvider, str(r.Provider)),
			ast.Item(kStream, ast.InternedTerm(r.Stream)),
			ast.Item(kTools, strs(r.Tools)),
			ast.Item(kToolResults, strs(r.ToolResults)),
			ast.Item(kMaxTokens, ast.InternedTerm(r.MaxTokens)),
			ast.Item(kPrompt, ast.NewTerm(ast.NewObject(
				ast.Item(kBytes, ast.InternedTerm(r.Prompt.Bytes)),
				ast.Item(kMessages, ast.InternedTerm(r.Prompt.Messages)),
			))),
		))))
	}
	if t := in.Tool; t != nil {
		items = append(items, ast.Item(kTool, ast.NewTerm(ast.NewObject(
			ast.Item(kName, str(t.Name)),
			ast.Item(kServer, str(t.Server)),
		))))
	}
	if a := in.Approval; a != nil {
		items = append(items, ast.Item(kApproval, ast.NewTerm(ast.NewObject(
			ast.Item(kID, str(a.ID)),
			ast.Item(kRequester, str(a.Requester)),
		))))
	}
	return ast.NewObject(items...)
}

func str(s string) *ast.Term { return ast.InternedTerm(s) }

func strs(ss []string) *ast.Term {
	if len(ss) == 0 {
		return ast.InternedEmptyArray
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.InternedTerm(s)
	}
	return ast.NewTerm(ast.NewArray(ts...))
}
