package spire

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/identity"
)

// This file checks the values of an entry's fields; parse.go walks the
// document.

// id parses a SPIFFE ID of trust domain td. A workload ID must have a path
// outside SPIRE's reserved /spire namespace.
func (p *parser) id(n *yaml.Node, what string, td spiffeid.TrustDomain, workload bool) (spiffeid.ID, bool) {
	s, ok := p.str(n, what)
	if !ok {
		return spiffeid.ID{}, false
	}
	id, err := spiffeid.FromString(s)
	switch {
	case err != nil:
		p.errorf(n.Line, "%s %q is not a SPIFFE ID: %v", what, s, err)
	case !id.MemberOf(td):
		p.errorf(n.Line, "%s %q is not in trust domain %q", what, s, td.Name())
	case id.Path() == "":
		p.errorf(n.Line, "%s %q has no path", what, s)
	case workload && (id.Path() == "/spire" || strings.HasPrefix(id.Path(), "/spire/")):
		p.errorf(n.Line, "%s %q is in SPIRE's reserved /spire namespace", what, s)
	default:
		return id, true
	}
	return spiffeid.ID{}, false
}

var selectorType = regexp.MustCompile(`^[a-z0-9_-]+$`)

func (p *parser) selectors(n *yaml.Node) []Selector {
	raw, lines, ok := p.strs(n, "selectors")
	if !ok {
		return nil
	}
	if len(raw) == 0 {
		p.errorf(n.Line, "selectors is empty: an entry needs at least one")
		return nil
	}
	out := make([]Selector, 0, len(raw))
	seen := make(map[Selector]bool)
	for i, s := range raw {
		expanded, err := expand(s, p.lookup)
		if err != nil {
			p.errorf(lines[i], "selector %q: %v", s, err)
			continue
		}
		sel, err := parseSelector(expanded)
		if err != nil {
			p.errorf(lines[i], "selector %q: %v", expanded, err)
			continue
		}
		if seen[sel] {
			p.errorf(lines[i], "selector %q is repeated", expanded)
			continue
		}
		seen[sel] = true
		out = append(out, sel)
	}
	return out
}

// parseSelector splits type:value and checks the values of the unix
// attestor's selectors, whose mistakes would otherwise only show as a
// workload that never gets its SVID.
func parseSelector(s string) (Selector, error) {
	typ, value, ok := strings.Cut(s, ":")
	if !ok || value == "" {
		return Selector{}, errors.New("want type:value, such as unix:uid:1000")
	}
	if !selectorType.MatchString(typ) {
		return Selector{}, fmt.Errorf("type %q must be lower-case letters, digits, - or _", typ)
	}
	sel := Selector{Type: typ, Value: value}
	if typ != "unix" {
		return sel, nil
	}
	name, arg, _ := strings.Cut(value, ":")
	switch name {
	case "uid", "gid", "supplementary_gid":
		if _, err := strconv.ParseUint(arg, 10, 32); err != nil {
			return Selector{}, fmt.Errorf("unix:%s wants a number, not %q", name, arg)
		}
	case "path":
		if !strings.HasPrefix(arg, "/") {
			return Selector{}, fmt.Errorf("unix:path wants an absolute path, not %q", arg)
		}
	case "sha256":
		if b, err := hex.DecodeString(arg); err != nil || len(b) != 32 {
			return Selector{}, fmt.Errorf("unix:sha256 wants 64 hex digits, not %q", arg)
		}
	case "user", "group", "supplementary_group":
		if arg == "" {
			return Selector{}, fmt.Errorf("unix:%s wants a name", name)
		}
	default:
		return Selector{}, fmt.Errorf("unknown unix selector %q (uid, user, gid, group, supplementary_gid, supplementary_group, path, sha256)", name)
	}
	return sel, nil
}

func (p *parser) ttl(n *yaml.Node, what string) time.Duration {
	s, ok := p.str(n, what)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(n.Line, "%s %q is not a duration such as 90s, 5m or 1h", what, s)
	case d <= 0:
		p.errorf(n.Line, "%s %q must be positive", what, s)
	case d%time.Second != 0:
		p.errorf(n.Line, "%s %q must be whole seconds", what, s)
	case d/time.Second > math.MaxInt32:
		p.errorf(n.Line, "%s %q is too long", what, s)
	default:
		return d
	}
	return 0
}

func (p *parser) dnsNames(n *yaml.Node) []string {
	names, lines, ok := p.strs(n, "dns_names")
	if !ok {
		return nil
	}
	seen := make(map[string]bool)
	for i, name := range names {
		if err := checkDNSName(name); err != nil {
			p.errorf(lines[i], "dns_names: %q %v", name, err)
		} else if seen[name] {
			p.errorf(lines[i], "dns_names: %q is repeated", name)
		}
		seen[name] = true
	}
	return names
}

// checkDNSName accepts what SPIRE accepts in an entry's DNS names: ASCII
// labels of letters, digits and hyphens, with at most one "*" as the whole
// first label.
func checkDNSName(name string) error {
	if len(name) > 253 {
		return errors.New("is longer than 253 bytes")
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if l == "*" && i == 0 && len(labels) > 1 {
			continue
		}
		if l == "" || len(l) > 63 {
			return errors.New("has an empty or too long label")
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("has %q in a label", c)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("has a label that starts or ends with '-'")
		}
	}
	return nil
}

func (p *parser) federatesWith(n *yaml.Node, own spiffeid.TrustDomain) []spiffeid.TrustDomain {
	names, lines, ok := p.strs(n, "federates_with")
	if !ok {
		return nil
	}
	var out []spiffeid.TrustDomain
	seen := make(map[spiffeid.TrustDomain]bool)
	for i, s := range names {
		td, err := spiffeid.TrustDomainFromString(s)
		switch {
		case err != nil || strings.Contains(s, "://"):
			p.errorf(lines[i], "federates_with: %q is not a trust domain name", s)
		case td == own:
			p.errorf(lines[i], "federates_with: %q is this file's own trust domain", s)
		case seen[td]:
			p.errorf(lines[i], "federates_with: %q is repeated", s)
		default:
			seen[td] = true
			out = append(out, td)
		}
	}
	return out
}

func (p *parser) principal(n *yaml.Node) *Principal {
	fields := p.mapping(n, "portcullis", "kind", "tenant")
	if fields == nil {
		return nil
	}
	out := &Principal{}
	ok := true
	if v := fields["kind"]; v == nil {
		p.errorf(n.Line, "portcullis: kind is missing")
		ok = false
	} else if s, good := p.str(v, "portcullis kind"); !good {
		ok = false
	} else if k, err := identity.ParseKind(s); err != nil {
		p.errorf(v.Line, "portcullis kind %q is not one of human, application, agent", s)
		ok = false
	} else {
		out.Kind = k
	}
	if v := fields["tenant"]; v == nil {
		p.errorf(n.Line, "portcullis: tenant is missing")
		ok = false
	} else if s, good := p.str(v, "portcullis tenant"); !good {
		ok = false
	} else {
		out.Tenant = s
	}
	if !ok {
		return nil
	}
	return out
}
