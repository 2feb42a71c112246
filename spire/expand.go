package spire

import (
	"errors"
	"fmt"
	"strings"
)

// expand replaces each ${NAME} in s with lookup(NAME). NAME is letters,
// digits and underscores, not starting with a digit. A "$" not followed by
// "{" is kept as it is; an unterminated "${", a bad name or an unset
// variable is an error.
func expand(s string, lookup Lookup) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("unterminated ${")
		}
		name := s[i+2 : i+end]
		if !validVarName(name) {
			return "", fmt.Errorf("bad variable name %q (want letters, digits and _)", name)
		}
		if lookup == nil {
			return "", fmt.Errorf("variable ${%s} used, but no variables are available here", name)
		}
		v, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("variable ${%s} is not set", name)
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
