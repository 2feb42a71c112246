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
func (in *Input) value() ast.Value { return in.valueOf(allFields, nil) }

// valueOf builds the part of the input document that m keeps: value without
// the fields a bundle cannot observe (inputShape). An object m keeps holds
// only the fields m keeps; an absent object stays absent. The principal,
// user, grant and request, and the whole input when it has no chain, come
// from pc, or are built and added to it (pc may be nil).
func (in *Input) valueOf(m fieldMask, pc *parts) ast.Value {
	b := builder{mask: m}
	if pc == nil {
		b.alloc(in, false)
	}
	var principal, user, grant, request *ast.Term
	built := false // a part was built here, so the whole input is new
	if m.has(fPrincipal) {
		if pc == nil {
			principal = b.principal(&in.Principal)
		} else if principal = pc.principal(in.Principal); principal == nil {
			principal = newBuilder(m, 6, 0).principal(&in.Principal)
			pc.putPrincipal(in.Principal, principal)
			built = true
		}
	}
	if u := in.User; u != nil && m.has(fUser) {
		if pc == nil {
			user = b.user(u)
		} else if user = pc.user(*u); user == nil {
			user = newBuilder(m, 4, 0).user(u)
			pc.putUser(*u, user)
			built = true
		}
	}
	if g := in.Grant; g != nil && m.has(fGrant) {
		if pc == nil {
			grant = b.grant(g)
		} else if grant = pc.grant(g); grant == nil {
			grant = newBuilder(m, 10+len(g.Scopes.Models)+len(g.Scopes.Tools), len(g.Scopes.Models)+len(g.Scopes.Tools)).grant(g)
			pc.putGrant(g, grant)
			built = true
		}
	}
	if r := in.Request; r != nil && m.has(fRequest) {
		if pc == nil {
			request = b.request(r)
		} else if request = pc.request(r, m); request == nil {
			request = newBuilder(m, 10+len(r.Tools)+len(r.ToolResults), len(r.Tools)+len(r.ToolResults)).request(r)
			pc.putRequest(r, m, request)
			built = true
		}
	}
	// The whole input repeats when its parts do: reuse it too, unless it
	// has a chain (a list, not a key). It is kept from the second time its
	// parts are seen, so that a one-off input (a grant's first request)
	// costs no more than building it.
	var key inputKey
	reuse := pc != nil && !built && (len(in.Chain) == 0 || !m.has(fChain))
	if reuse {
		key = inputKey{principal: principal, user: user, grant: grant, request: request}
		if m.has(fAction) {
			key.action = in.Action
		}
		if in.Tool != nil && m.has(fTool) {
			key.tool, key.hasTool = *in.Tool, true
		}
		if in.Approval != nil && m.has(fApproval) {
			key.approval, key.hasApproval = *in.Approval, true
		}
		if v := pc.input(key); v != nil {
			return v
		}
		b.alloc(in, true)
	}
	var top [8]shapeItem
	items := append(top[:0],
		b.field(fAction, kAction, in.Action),
		shapeItem{fPrincipal, kPrincipal, principal},
	)
	if user != nil {
		items = append(items, shapeItem{fUser, kUser, user})
	}
	if len(in.Chain) > 0 {
		items = append(items, b.strsField(fChain, kChain, in.Chain))
	}
	if grant != nil {
		items = append(items, shapeItem{fGrant, kGrant, grant})
	}
	if request != nil {
		items = append(items, shapeItem{fRequest, kRequest, request})
	}
	if t := in.Tool; t != nil && m.has(fTool) {
		items = append(items, shapeItem{fTool, kTool, b.obj(
			b.field(fToolName, kName, t.Name),
			b.field(fToolServer, kServer, t.Server),
		)})
	}
	if a := in.Approval; a != nil && m.has(fApproval) {
		items = append(items, shapeItem{fApproval, kApproval, b.obj(
			b.field(fApprovalID, kID, a.ID),
			b.field(fApprovalRequester, kRequester, a.Requester),
			b.field(fApprovalTenant, kTenant, a.Tenant),
			b.field(fApprovalAction, kAction, a.Action),
			b.field(fApprovalUser, kUser, a.User),
		)})
	}
	v := b.object(items...)
	if reuse {
		pc.putInput(key, v)
	}
	return v
}

func (b *builder) principal(p *Principal) *ast.Term {
	return b.obj(
		b.field(fPrincipalSPIFFEID, kSPIFFEID, p.SPIFFEID),
		b.field(fPrincipalTrustDomain, kTrustDomain, p.TrustDomain),
		b.field(fPrincipalKind, kKind, p.Kind),
		b.field(fPrincipalTenant, kTenant, p.Tenant),
		b.field(fPrincipalName, kName, p.Name),
	)
}

func (b *builder) user(u *User) *ast.Term {
	return b.obj(
		b.field(fUserSubject, kSubject, u.Subject),
		b.field(fUserIssuer, kIssuer, u.Issuer),
		b.field(fUserKind, kKind, u.Kind),
	)
}

func (b *builder) grant(g *Grant) *ast.Term {
	var scopes *ast.Term
	if b.mask.has(fGrantScopes) {
		scopes = b.obj(
			b.strsField(fGrantScopesModels, kModels, g.Scopes.Models),
			b.strsField(fGrantScopesTools, kTools, g.Scopes.Tools),
			b.numField(fGrantScopesMaxTokens, kMaxTokens, int64(g.Scopes.MaxTokens)),
		)
	}
	return b.obj(
		b.field(fGrantID, kID, g.ID),
		b.field(fGrantTask, kTask, g.Task),
		b.field(fGrantPurpose, kPurpose, g.Purpose),
		b.field(fGrantTenant, kTenant, g.Tenant),
		shapeItem{fGrantScopes, kScopes, scopes},
		b.numField(fGrantExpiresAt, kExpiresAt, g.ExpiresAt),
	)
}

func (b *builder) request(r *Request) *ast.Term {
	var prompt *ast.Term
	if b.mask.has(fRequestPrompt) {
		prompt = b.obj(
			b.numField(fRequestPromptBytes, kBytes, int64(r.Prompt.Bytes)),
			b.numField(fRequestPromptMessages, kMessages, int64(r.Prompt.Messages)),
		)
	}
	return b.obj(
		b.field(fRequestAPI, kAPI, r.API),
		b.field(fRequestModel, kModel, r.Model),
		b.field(fRequestProvider, kProvider, r.Provider),
		shapeItem{fRequestStream, kStream, ast.InternedTerm(r.Stream)},
		b.strsField(fRequestTools, kTools, r.Tools),
		b.strsField(fRequestToolResults, kToolResults, r.ToolResults),
		b.numField(fRequestMaxTokens, kMaxTokens, int64(r.MaxTokens)),
		shapeItem{fRequestPrompt, kPrompt, prompt},
	)
}

// shapeItem is a field of an object under construction, kept when the
// builder's mask has its field (its value is nil otherwise).
type shapeItem struct {
	field fieldMask
	key   *ast.Term
	value *ast.Term
}

// builder makes the input's terms from one slab, so that building the input
// costs a few allocations rather than one or two per field. Its mask says
// which fields to build.
type builder struct {
	mask  fieldMask
	terms []ast.Term
	ptrs  []*ast.Term
}

// newBuilder is a builder with a slab of n terms and ptrs list items, for
// one part of the input (the counts are the part's at most).
func newBuilder(m fieldMask, n, ptrs int) *builder {
	return &builder{mask: m, terms: make([]ast.Term, n), ptrs: make([]*ast.Term, ptrs)}
}

// alloc sizes the slab for in; when cached, for the parts a parts cache
// does not hold (action, chain, tool, approval).
func (b *builder) alloc(in *Input, cached bool) {
	lists := len(in.Chain)
	if cached {
		// 8 strings, 2 objects and an array at most, plus the chain.
		b.terms = make([]ast.Term, 11+lists)
		b.ptrs = make([]*ast.Term, lists)
		return
	}
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

// field, strsField and numField are a string, list and number field,
// built only when the mask keeps them.
func (b *builder) field(f fieldMask, k *ast.Term, s string) shapeItem {
	if !b.mask.has(f) {
		return shapeItem{field: f}
	}
	return shapeItem{f, k, b.str(s)}
}

func (b *builder) strsField(f fieldMask, k *ast.Term, ss []string) shapeItem {
	if !b.mask.has(f) {
		return shapeItem{field: f}
	}
	return shapeItem{f, k, b.strs(ss)}
}

func (b *builder) numField(f fieldMask, k *ast.Term, n int64) shapeItem {
	if !b.mask.has(f) {
		return shapeItem{field: f}
	}
	return shapeItem{f, k, b.num(n)}
}

// object makes an object of the items the mask keeps.
func (b *builder) object(items ...shapeItem) ast.Object {
	var kv [8][2]*ast.Term
	n := 0
	for _, it := range items {
		if b.mask.has(it.field) {
			kv[n] = ast.Item(it.key, it.value)
			n++
		}
	}
	return ast.NewObject(kv[:n]...)
}

func (b *builder) obj(items ...shapeItem) *ast.Term { return b.term(b.object(items...)) }

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
