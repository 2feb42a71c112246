package policy

import (
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// fieldMask is a set of the input contract's fields (objects and leaves),
// one bit per field of inputFields.
type fieldMask uint64

// The input contract's fields, each a bit of fieldMask. An object's bit
// keeps the object; its children are kept by their own bits.
const (
	fAction fieldMask = 1 << iota
	fPrincipal
	fPrincipalSPIFFEID
	fPrincipalTrustDomain
	fPrincipalKind
	fPrincipalTenant
	fPrincipalName
	fUser
	fUserSubject
	fUserIssuer
	fUserKind
	fChain
	fGrant
	fGrantID
	fGrantTask
	fGrantPurpose
	fGrantTenant
	fGrantScopes
	fGrantScopesModels
	fGrantScopesTools
	fGrantScopesMaxTokens
	fGrantExpiresAt
	fRequest
	fRequestAPI
	fRequestModel
	fRequestProvider
	fRequestStream
	fRequestTools
	fRequestToolResults
	fRequestMaxTokens
	fRequestPrompt
	fRequestPromptBytes
	fRequestPromptMessages
	fTool
	fToolName
	fToolServer
	fApproval
	fApprovalID
	fApprovalRequester
	fApprovalTenant
	fApprovalAction
	fApprovalUser

	allFields = fApprovalUser<<1 - 1
)

// inputFields names each field of fieldMask by its path in the input.
var inputFields = []struct {
	bit  fieldMask
	path []string
}{
	{fAction, []string{"action"}},
	{fPrincipal, []string{"principal"}},
	{fPrincipalSPIFFEID, []string{"principal", "spiffe_id"}},
	{fPrincipalTrustDomain, []string{"principal", "trust_domain"}},
	{fPrincipalKind, []string{"principal", "kind"}},
	{fPrincipalTenant, []string{"principal", "tenant"}},
	{fPrincipalName, []string{"principal", "name"}},
	{fUser, []string{"user"}},
	{fUserSubject, []string{"user", "subject"}},
	{fUserIssuer, []string{"user", "issuer"}},
	{fUserKind, []string{"user", "kind"}},
	{fChain, []string{"chain"}},
	{fGrant, []string{"grant"}},
	{fGrantID, []string{"grant", "id"}},
	{fGrantTask, []string{"grant", "task"}},
	{fGrantPurpose, []string{"grant", "purpose"}},
	{fGrantTenant, []string{"grant", "tenant"}},
	{fGrantScopes, []string{"grant", "scopes"}},
	{fGrantScopesModels, []string{"grant", "scopes", "models"}},
	{fGrantScopesTools, []string{"grant", "scopes", "tools"}},
	{fGrantScopesMaxTokens, []string{"grant", "scopes", "max_tokens"}},
	{fGrantExpiresAt, []string{"grant", "expires_at"}},
	{fRequest, []string{"request"}},
	{fRequestAPI, []string{"request", "api"}},
	{fRequestModel, []string{"request", "model"}},
	{fRequestProvider, []string{"request", "provider"}},
	{fRequestStream, []string{"request", "stream"}},
	{fRequestTools, []string{"request", "tools"}},
	{fRequestToolResults, []string{"request", "tool_results"}},
	{fRequestMaxTokens, []string{"request", "max_tokens"}},
	{fRequestPrompt, []string{"request", "prompt"}},
	{fRequestPromptBytes, []string{"request", "prompt", "bytes"}},
	{fRequestPromptMessages, []string{"request", "prompt", "messages"}},
	{fTool, []string{"tool"}},
	{fToolName, []string{"tool", "name"}},
	{fToolServer, []string{"tool", "server"}},
	{fApproval, []string{"approval"}},
	{fApprovalID, []string{"approval", "id"}},
	{fApprovalRequester, []string{"approval", "requester"}},
	{fApprovalTenant, []string{"approval", "tenant"}},
	{fApprovalAction, []string{"approval", "action"}},
	{fApprovalUser, []string{"approval", "user"}},
}

// has reports whether every field of f is in m.
func (m fieldMask) has(f fieldMask) bool { return m&f == f }

// inputShape works out which fields of the input the compiled modules can
// observe, so that the engine builds only those.
//
// Every reference to input in a rule, function, `with` or comprehension is
// a path: its constant string keys up to the first variable, call or
// number. A path keeps every field along it and, because the rule sees the
// value there as a whole (compares it, passes it to a builtin, binds it to
// a variable, iterates it), the whole subtree below it. The one exception
// is an expression that is the reference alone (`input.grant`,
// `not input.grant`) and all constant: it only asks whether the value is
// defined and not false, which an object keeps when some of its fields are
// left out, so it keeps the fields along its path but not the subtree.
// A bare `input` keeps everything.
func inputShape(modules map[string]*ast.Module) fieldMask {
	var m fieldMask
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case *ast.Expr:
			t, ok := x.Terms.(*ast.Term)
			if !ok {
				return false
			}
			ref, ok := t.Value.(ast.Ref)
			if !ok || !ref.HasPrefix(ast.InputRootRef) {
				return false
			}
			path, whole := refPath(ref)
			m |= shapeOf(path, whole)
			for _, t := range ref[1:] {
				vis.Walk(t)
			}
			for _, w := range x.With {
				vis.Walk(w)
			}
			return true
		case ast.Ref:
			if ref := x; ref.HasPrefix(ast.InputRootRef) {
				path, _ := refPath(ref)
				m |= shapeOf(path, true)
				// Keys of the ref may themselves refer to input.
				for _, t := range ref[1:] {
					vis.Walk(t)
				}
				return true
			}
		case ast.Var:
			if x.Equal(ast.InputRootDocument.Value) {
				m = allFields
			}
		}
		return false
	})
	for _, mod := range modules {
		vis.Walk(mod)
	}
	return m
}

// refPath is ref's constant string keys after input, and whether ref goes
// on past them (a variable, a number, a call): then the rule sees the value
// at the path as a whole.
func refPath(ref ast.Ref) (path []string, more bool) {
	for _, t := range ref[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			return path, true
		}
		path = append(path, string(s))
	}
	return path, false
}

// shapeOf is the fields a reference to path needs: those along it, and,
// when whole, every field below it.
func shapeOf(path []string, whole bool) fieldMask {
	var m fieldMask
	for _, f := range inputFields {
		n := min(len(path), len(f.path))
		if !slices.Equal(path[:n], f.path[:n]) {
			continue
		}
		if len(f.path) <= len(path) || whole {
			m |= f.bit
		}
	}
	return m
}
