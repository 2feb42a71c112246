package spire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.yaml.in/yaml/v3"
)

// MaxFileSize caps the size of an entries file.
const MaxFileSize = 1 << 20

// maxErrors caps how many problems one parse reports.
const maxErrors = 20

// maxHint is SPIRE's limit on an entry's hint.
const maxHint = 1024

// Lookup resolves the variable NAME of a ${NAME} in a selector value, like
// [os.LookupEnv].
type Lookup func(name string) (string, bool)

// ParseError says where and why an entries file is invalid. Parse returns
// all problems it finds (up to 20), joined; errors.As gives the first.
type ParseError struct {
	File   string
	Line   int // 1-based; 0 when the error is about the whole file
	Reason string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("spire: %s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("spire: %s:%d: %s", e.File, e.Line, e.Reason)
}

// ReadFile reads and parses the entries file at path; see [Parse].
func ReadFile(path string, lookup Lookup) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spire: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("spire: reading %s: %w", path, err)
	}
	return Parse(path, data, lookup)
}

// Parse parses an entries file; name labels its errors. The format, in YAML:
//
//	trust_domain: example.org              # required; every ID must be in it
//	parent_id: spiffe://example.org/host   # default parent of the entries
//	entries:                               # required, may be []
//	  - spiffe_id: spiffe://example.org/tenant/acme/app/demo-app   # required
//	    parent_id: spiffe://example.org/host   # required unless given above
//	    selectors: [unix:uid:1000, "unix:path:${PORTCULLIS_ROOT}/bin/app"]  # required
//	    x509_svid_ttl: 1h                  # optional, whole seconds
//	    jwt_svid_ttl: 5m                   # optional, whole seconds
//	    dns_names: [app.example.org]       # optional
//	    federates_with: [partner.example]  # optional, trust domain names
//	    hint: app                          # optional
//	    portcullis: {kind: application, tenant: acme}   # optional
//
// Parsing is strict: an unknown or repeated key, a value of the wrong type, a
// YAML alias, a second document, an invalid ID, selector, duration or DNS
// name, or two entries with the same SPIFFE ID and parent are errors, each a
// [*ParseError] naming the line. ${NAME} in a selector value is replaced by
// lookup(NAME) (nil lookup: no variables); an unset variable is an error.
func Parse(name string, data []byte, lookup Lookup) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, &ParseError{File: name, Reason: fmt.Sprintf("larger than %d bytes", MaxFileSize)}
	}
	p := &parser{name: name, lookup: lookup}
	f := p.file(data)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return f, nil
}

type parser struct {
	name   string
	lookup Lookup
	errs   []error
}

func (p *parser) errorf(line int, format string, args ...any) {
	if len(p.errs) == maxErrors {
		p.errs = append(p.errs, &ParseError{File: p.name, Line: line, Reason: "too many errors"})
	}
	if len(p.errs) > maxErrors {
		return
	}
	p.errs = append(p.errs, &ParseError{File: p.name, Line: line, Reason: fmt.Sprintf(format, args...)})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

func (p *parser) file(data []byte) *File {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(0, "empty file")
			return nil
		}
		p.yamlError(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			p.yamlError(err)
		} else {
			p.errorf(extra.Line, "a second YAML document; the file must hold one")
		}
		return nil
	}
	if len(doc.Content) == 0 {
		p.errorf(0, "empty file")
		return nil
	}
	root := doc.Content[0]
	fields := p.mapping(root, "the file", "trust_domain", "parent_id", "entries")
	if fields == nil {
		return nil
	}

	f := &File{Name: p.name}
	tdNode := fields["trust_domain"]
	if tdNode == nil {
		p.errorf(root.Line, "trust_domain is missing")
		return nil
	}
	if s, ok := p.str(tdNode, "trust_domain"); ok {
		td, err := spiffeid.TrustDomainFromString(s)
		if err != nil || strings.Contains(s, "://") {
			p.errorf(tdNode.Line, "trust_domain %q is not a trust domain name such as example.org", s)
			return nil
		}
		f.TrustDomain = td
	} else {
		return nil
	}

	var defaultParent spiffeid.ID
	if n := fields["parent_id"]; n != nil {
		defaultParent, _ = p.id(n, "parent_id", f.TrustDomain, false)
	}

	list := fields["entries"]
	if list == nil {
		p.errorf(root.Line, "entries is missing (write entries: [] for none)")
		return nil
	}
	if !p.kind(list, yaml.SequenceNode, "entries", "a list of entries") {
		return nil
	}
	type key struct{ parent, id string }
	seen := make(map[key]int)
	for _, n := range list.Content {
		e, ok := p.entry(n, f.TrustDomain, defaultParent)
		if !ok {
			continue
		}
		k := key{e.ParentID.String(), e.SPIFFEID.String()}
		if first, dup := seen[k]; dup {
			p.errorf(e.Line, "%s with parent %s is already the entry at line %d", e.SPIFFEID, e.ParentID, first)
			continue
		}
		seen[k] = e.Line
		f.Entries = append(f.Entries, e)
	}
	return f
}

func (p *parser) yamlError(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.errorf(line, "%s", strings.TrimPrefix(msg, m[0]))
		return
	}
	p.errorf(0, "%s", strings.TrimPrefix(msg, "yaml: "))
}

func (p *parser) entry(n *yaml.Node, td spiffeid.TrustDomain, defaultParent spiffeid.ID) (Entry, bool) {
	fields := p.mapping(n, "an entry", "spiffe_id", "parent_id", "selectors", "x509_svid_ttl",
		"jwt_svid_ttl", "dns_names", "federates_with", "hint", "portcullis")
	if fields == nil {
		return Entry{}, false
	}
	e := Entry{Line: n.Line}
	before := len(p.errs)

	if v := fields["spiffe_id"]; v != nil {
		e.SPIFFEID, _ = p.id(v, "spiffe_id", td, true)
	} else {
		p.errorf(n.Line, "spiffe_id is missing")
	}
	switch v := fields["parent_id"]; {
	case v != nil:
		e.ParentID, _ = p.id(v, "parent_id", td, false)
	case !defaultParent.IsZero():
		e.ParentID = defaultParent
	default:
		p.errorf(n.Line, "parent_id is missing (here or at the top of the file)")
	}

	if v := fields["selectors"]; v != nil {
		e.Selectors = p.selectors(v)
	} else {
		p.errorf(n.Line, "selectors is missing")
	}
	if v := fields["x509_svid_ttl"]; v != nil {
		e.X509SVIDTTL = p.ttl(v, "x509_svid_ttl")
	}
	if v := fields["jwt_svid_ttl"]; v != nil {
		e.JWTSVIDTTL = p.ttl(v, "jwt_svid_ttl")
	}
	if v := fields["dns_names"]; v != nil {
		e.DNSNames = p.dnsNames(v)
	}
	if v := fields["federates_with"]; v != nil {
		e.FederatesWith = p.federatesWith(v, td)
	}
	if v := fields["hint"]; v != nil {
		if s, ok := p.str(v, "hint"); ok {
			if len(s) > maxHint {
				p.errorf(v.Line, "hint is longer than %d bytes", maxHint)
			}
			e.Hint = s
		}
	}
	if v := fields["portcullis"]; v != nil {
		e.Principal = p.principal(v)
	}
	return e, len(p.errs) == before
}

// mapping checks that n is a mapping whose keys are distinct strings among
// allowed, and returns the value of each key.
func (p *parser) mapping(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	if !p.kind(n, yaml.MappingNode, what, "a mapping of keys to values") {
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	lines := make(map[string]int)
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			p.errorf(k.Line, "keys must be plain names")
			ok = false
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			p.errorf(k.Line, "unknown key %q in %s (known: %s)", k.Value, what, strings.Join(allowed, ", "))
			ok = false
			continue
		}
		if first, dup := lines[k.Value]; dup {
			p.errorf(k.Line, "%s is repeated (first at line %d)", k.Value, first)
			ok = false
			continue
		}
		lines[k.Value] = k.Line
		out[k.Value] = v
	}
	if !ok {
		return nil
	}
	return out
}

var kindNames = map[yaml.Kind]string{
	yaml.DocumentNode: "a document",
	yaml.SequenceNode: "a list",
	yaml.MappingNode:  "a mapping",
	yaml.ScalarNode:   "a single value",
	yaml.AliasNode:    "an alias",
}

// kind checks that n is of kind k; want describes k to the reader.
func (p *parser) kind(n *yaml.Node, k yaml.Kind, what, want string) bool {
	switch {
	case n.Kind == yaml.AliasNode:
		p.errorf(n.Line, "%s: YAML aliases are not supported", what)
		return false
	case n.Kind != k:
		p.errorf(n.Line, "%s must be %s, not %s", what, want, kindNames[n.Kind])
		return false
	}
	return true
}

// str returns a string scalar. Numbers, booleans and nulls are refused
// rather than converted: write "8080", not 8080.
func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	if !p.kind(n, yaml.ScalarNode, what, "a string") {
		return "", false
	}
	if tag := n.ShortTag(); tag != "!!str" {
		p.errorf(n.Line, "%s must be a string, not %s %q (quote it)", what, strings.TrimPrefix(tag, "!!"), n.Value)
		return "", false
	}
	if n.Value == "" {
		p.errorf(n.Line, "%s is empty", what)
		return "", false
	}
	return n.Value, true
}

// strs returns a list of strings.
func (p *parser) strs(n *yaml.Node, what string) ([]string, []int, bool) {
	if !p.kind(n, yaml.SequenceNode, what, "a list") {
		return nil, nil, false
	}
	out := make([]string, 0, len(n.Content))
	lines := make([]int, 0, len(n.Content))
	ok := true
	for _, c := range n.Content {
		s, good := p.str(c, what+" item")
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
		lines = append(lines, c.Line)
	}
	return out, lines, ok
}
