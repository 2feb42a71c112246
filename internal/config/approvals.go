package config

import (
	"fmt"
	"time"
)

// Approvals configures human approvals (docs/approvals.md). They keep their
// requests in the grants state store, so they are off when grants are.
type Approvals struct {
	// Disable turns approvals off: an action whose decision requires one
	// is then refused outright.
	Disable bool `yaml:"disable"`
	// TTL is how long an approval lives, from the parked request to its
	// use; default DefaultApprovalTTL, at most 24h.
	TTL time.Duration `yaml:"ttl"`
}

// DefaultApprovalTTL is the lifetime of an approval when approvals.ttl is unset.
const DefaultApprovalTTL = 15 * time.Minute

func (c *Config) validateApprovals() error {
	a := &c.Approvals
	if a.TTL == 0 {
		a.TTL = DefaultApprovalTTL
	}
	if a.TTL < time.Second || a.TTL > 24*time.Hour {
		return &FieldError{"approvals.ttl", fmt.Sprintf("%v: must be between 1s and 24h", a.TTL)}
	}
	return nil
}
