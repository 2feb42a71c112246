package config

import (
	"errors"
	"testing"
	"time"
)

func TestApprovalsTTL(t *testing.T) {
	tests := []struct {
		ttl     time.Duration
		want    time.Duration
		wantErr bool
	}{
		{0, DefaultApprovalTTL, false},
		{time.Hour, time.Hour, false},
		{time.Millisecond, 0, true},
		{-time.Minute, 0, true},
		{25 * time.Hour, 0, true},
	}
	for _, tt := range tests {
		c := &Config{Approvals: Approvals{TTL: tt.ttl}}
		err := c.validateApprovals()
		var fe *FieldError
		if tt.wantErr {
			if !errors.As(err, &fe) || fe.Field != "approvals.ttl" {
				t.Errorf("ttl %v: got %v, want a FieldError on approvals.ttl", tt.ttl, err)
			}
			continue
		}
		if err != nil || c.Approvals.TTL != tt.want {
			t.Errorf("ttl %v: got %v, %v; want %v", tt.ttl, c.Approvals.TTL, err, tt.want)
		}
	}
}
