package config

import (
	"fmt"
	"strings"
)

// SplitFallback splits a fallback target "provider/model" at its first
// slash (model names may hold more).
func SplitFallback(s string) (provider, model string, ok bool) {
	provider, model, ok = strings.Cut(s, "/")
	return provider, model, ok && provider != "" && model != ""
}

// validateFallbacks checks every models[].fallback: each target names a
// configured provider and a model, and is not the model's own upstream.
func (c *Config) validateFallbacks() error {
	provs := map[string]bool{}
	for _, p := range c.Providers {
		provs[p.Name] = true
	}
	for i, p := range c.Providers {
		for j, m := range p.Models {
			upstream := m.Upstream
			if upstream == "" {
				upstream = m.Name
			}
			seen := map[string]bool{p.Name + "/" + upstream: true}
			for k, f := range m.Fallback {
				field := fmt.Sprintf("providers[%d].models[%d].fallback[%d]", i, j, k)
				name, _, ok := SplitFallback(f)
				switch {
				case !ok:
					return &FieldError{field, fmt.Sprintf("%q must be provider/model", f)}
				case !provs[name]:
					return &FieldError{field, fmt.Sprintf("provider %q is not configured", name)}
				case seen[f]:
					return &FieldError{field, fmt.Sprintf("%q is already tried for model %q", f, m.Name)}
				}
				seen[f] = true
			}
		}
	}
	return nil
}
