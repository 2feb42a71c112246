package identity

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// ErrUnknownID is wrapped by the error [Resolver.Resolve] returns for an ID
// that no template matches. Such a caller is refused, even though its SVID is
// valid.
var ErrUnknownID = errors.New("identity: SPIFFE ID matches no principal template")

// Placeholders a [Template] pattern may use, each as a whole path segment.
const (
	PlaceholderTenant = "{tenant}"
	PlaceholderName   = "{name}"
)

// Template maps SPIFFE IDs to principals.
//
// Pattern is a full SPIFFE ID whose path segments may be the placeholders
// "{tenant}" and "{name}". A placeholder is a whole segment and matches exactly
// one non-empty path segment; every other segment must match literally, and
// the ID must have exactly as many segments as the pattern. The trust domain is
// always literal. For example
//
//	spiffe://example.org/tenant/{tenant}/agent/{name}
//
// matches spiffe://example.org/tenant/acme/agent/support-bot with tenant "acme"
// and name "support-bot", and nothing with more or fewer segments.
//
// Tenant is a fixed tenant for patterns without "{tenant}"; a template must get
// its tenant from exactly one of the two. The name comes from "{name}", or
// else is the ID's last path segment.
type Template struct {
	Pattern string `json:"pattern" yaml:"pattern"`
	Kind    Kind   `json:"kind" yaml:"kind"`
	Tenant  string `json:"tenant,omitempty" yaml:"tenant,omitempty"`
}

// Resolver turns verified SPIFFE IDs into principals using an ordered list of
// templates. It is immutable and safe for concurrent use.
type Resolver struct {
	// byTD holds the compiled templates of each trust domain, in
	// configuration order. IDs of other trust domains match nothing.
	byTD map[string][]compiledTemplate
	n    int
}

type placeholder uint8

const (
	literal placeholder = iota
	tenantPH
	namePH
)

type segment struct {
	ph  placeholder
	lit string // when ph == literal
}

type compiledTemplate struct {
	segs      []segment
	kind      Kind
	tenant    string // fixed tenant, when the pattern has no {tenant}
	hasTenant bool
	hasName   bool
}

// NewResolver compiles templates. It fails, naming the template's index and
// the problem, if a pattern does not parse, a kind is unknown, a placeholder
// is malformed or repeated, the tenant is missing or given twice, or a
// template can never match because an earlier one with the same pattern
// shadows it.
func NewResolver(templates []Template) (*Resolver, error) {
	r := &Resolver{byTD: make(map[string][]compiledTemplate), n: len(templates)}
	seen := make(map[string]int, len(templates))
	for i, t := range templates {
		td, c, err := compileTemplate(t)
		if err != nil {
			return nil, fmt.Errorf("identity: template %d (%q): %w", i, t.Pattern, err)
		}
		key := c.shape(td)
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("identity: template %d (%q): never matches, template %d has the same pattern", i, t.Pattern, j)
		}
		seen[key] = i
		r.byTD[td.Name()] = append(r.byTD[td.Name()], c)
	}
	return r, nil
}

// Len returns the number of templates.
func (r *Resolver) Len() int { return r.n }

// MaxTemplateSegments is the most path segments a template pattern may have.
const MaxTemplateSegments = 16

// Resolve returns the principal for id from the first template that matches.
// An ID that no template matches gives an error wrapping [ErrUnknownID].
//
// Resolve runs on every request: it splits the ID's path once, into an array
// on the stack, then compares segment by segment; it allocates nothing when it
// succeeds (tenant and name share memory with id).
func (r *Resolver) Resolve(id spiffeid.ID) (Principal, error) {
	if r != nil {
		if cands := r.byTD[id.TrustDomain().Name()]; len(cands) > 0 {
			var buf [MaxTemplateSegments]string
			if segs, ok := splitPath(id.Path(), &buf); ok {
				for i := range cands {
					if p, ok := cands[i].match(id, segs); ok {
						return p, nil
					}
				}
			}
		}
	}
	return Principal{}, fmt.Errorf("%w: %q", ErrUnknownID, id.String())
}

// splitPath splits a SPIFFE ID path ("/a/b/c") into buf. It fails if the path
// has more segments than buf holds, since no template can then match.
func splitPath(path string, buf *[MaxTemplateSegments]string) ([]string, bool) {
	n := 0
	for path != "" {
		if path[0] != '/' || n == len(buf) {
			return nil, false
		}
		path = path[1:]
		seg := path
		if j := strings.IndexByte(path, '/'); j >= 0 {
			seg, path = path[:j], path[j:]
		} else {
			path = ""
		}
		buf[n] = seg
		n++
	}
	return buf[:n], true
}

func (c *compiledTemplate) match(id spiffeid.ID, segs []string) (Principal, bool) {
	if len(segs) != len(c.segs) {
		return Principal{}, false
	}
	var tenant, name string
	for i, seg := range segs {
		if seg == "" {
			return Principal{}, false // not in a valid ID; never let a placeholder match it
		}
		switch s := &c.segs[i]; s.ph {
		case literal:
			if seg != s.lit {
				return Principal{}, false
			}
		case tenantPH:
			tenant = seg
		case namePH:
			name = seg
		}
	}
	if !c.hasName {
		name = segs[len(segs)-1]
	}
	if !c.hasTenant {
		tenant = c.tenant
	}
	return Principal{ID: id, Kind: c.kind, Tenant: tenant, Name: name}, true
}

func compileTemplate(t Template) (spiffeid.TrustDomain, compiledTemplate, error) {
	var c compiledTemplate
	if !t.Kind.Valid() {
		return spiffeid.TrustDomain{}, c, fmt.Errorf("unknown kind %q (want %q, %q or %q)",
			t.Kind, KindHuman, KindApplication, KindAgent)
	}
	c.kind = t.Kind

	const scheme = "spiffe://"
	rest, ok := strings.CutPrefix(t.Pattern, scheme)
	if !ok {
		return spiffeid.TrustDomain{}, c, fmt.Errorf("pattern must start with %q", scheme)
	}
	tdName, path, _ := strings.Cut(rest, "/")
	if strings.ContainsAny(tdName, "{}") {
		return spiffeid.TrustDomain{}, c, errors.New("placeholders are not allowed in the trust domain")
	}
	td, err := spiffeid.TrustDomainFromString(tdName)
	if err != nil {
		return spiffeid.TrustDomain{}, c, fmt.Errorf("trust domain %q: %w", tdName, err)
	}
	if path == "" {
		return spiffeid.TrustDomain{}, c, errors.New("pattern has no path; a template must name workloads, not a trust domain")
	}
	if n := strings.Count(path, "/") + 1; n > MaxTemplateSegments {
		return spiffeid.TrustDomain{}, c, fmt.Errorf("pattern has %d path segments, more than %d", n, MaxTemplateSegments)
	}
	for _, seg := range strings.Split(path, "/") {
		switch {
		case seg == PlaceholderTenant:
			if c.hasTenant {
				return spiffeid.TrustDomain{}, c, fmt.Errorf("placeholder %s appears more than once", seg)
			}
			c.hasTenant = true
			c.segs = append(c.segs, segment{ph: tenantPH})
		case seg == PlaceholderName:
			if c.hasName {
				return spiffeid.TrustDomain{}, c, fmt.Errorf("placeholder %s appears more than once", seg)
			}
			c.hasName = true
			c.segs = append(c.segs, segment{ph: namePH})
		case strings.ContainsAny(seg, "{}"):
			return spiffeid.TrustDomain{}, c, fmt.Errorf("malformed placeholder in segment %q (a placeholder is a whole segment: %s or %s)",
				seg, PlaceholderTenant, PlaceholderName)
		default:
			if err := spiffeid.ValidatePathSegment(seg); err != nil {
				return spiffeid.TrustDomain{}, c, fmt.Errorf("path segment %q: %w", seg, err)
			}
			c.segs = append(c.segs, segment{lit: seg})
		}
	}

	switch {
	case c.hasTenant && t.Tenant != "":
		return spiffeid.TrustDomain{}, c, fmt.Errorf("fixed tenant %q conflicts with %s in the pattern", t.Tenant, PlaceholderTenant)
	case !c.hasTenant && t.Tenant == "":
		return spiffeid.TrustDomain{}, c, fmt.Errorf("no tenant: the pattern has no %s and Tenant is empty", PlaceholderTenant)
	case !c.hasTenant:
		if err := spiffeid.ValidatePathSegment(t.Tenant); err != nil {
			return spiffeid.TrustDomain{}, c, fmt.Errorf("fixed tenant %q: %w", t.Tenant, err)
		}
		c.tenant = t.Tenant
	}
	return td, c, nil
}

// shape identifies the set of IDs a template matches: two templates with the
// same shape match the same IDs, so the later one is dead.
func (c *compiledTemplate) shape(td spiffeid.TrustDomain) string {
	var b strings.Builder
	b.WriteString(td.Name())
	for _, s := range c.segs {
		b.WriteByte('/')
		switch s.ph {
		case literal:
			b.WriteString(s.lit)
		default:
			b.WriteString("{}") // {tenant} and {name} match the same segments
		}
	}
	return b.String()
}
