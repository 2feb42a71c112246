package store

import (
	"context"
	"path/filepath"
	"testing"
)

func BenchmarkIsRevoked(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "state.db"), BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for b.Loop() {
		if r, _ := s.IsRevoked(ctx, "g_0123456789abcdef", "acme/ticket-1"); r {
			b.Fatal("revoked")
		}
	}
}
