package audit

import (
	"context"
	"errors"
	"testing"
)

func TestErrAndStats(t *testing.T) {
	l, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("fresh log: Err = %v", err)
	}
	for i := 0; i < 3; i++ {
		if _, err := l.Append(context.Background(), &Event{Type: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	if s := l.Stats(); s.Records != 3 || s.Syncs == 0 || s.Syncs > 3 {
		t.Errorf("Stats = %+v, want 3 records in 1..3 syncs", s)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("closed log: Err = %v, want ErrClosed", err)
	}
}
