package audit

import (
	"context"
	"errors"
	"strconv"
	"testing"
)

func TestAppendAsync(t *testing.T) {
	l, dir := openTest(t, Options{})
	ctx := context.Background()
	var ps []*Pending
	for i := range 300 {
		p, err := l.AppendAsync(&Event{Type: "decision", RequestID: "req-" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	for i, p := range ps {
		seq, err := p.Wait(ctx)
		if err != nil || seq != uint64(i) {
			t.Fatalf("Wait %d: got %d, %v; want seq %d", i, seq, err, i)
		}
	}
	if _, err := ps[0].Wait(ctx); err == nil {
		t.Error("a second Wait succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir)
	if err != nil || rep.Records != 300 {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	if _, err := l.AppendAsync(&Event{Type: "decision"}); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendAsync after Close: %v, want ErrClosed", err)
	}
	if _, err := l.AppendAsync(nil); err == nil {
		t.Error("AppendAsync(nil) succeeded")
	}
}

// TestAppendAsyncWithdrawn checks that a Wait whose context has ended
// before the writer took the record withdraws it: no seq is used.
func TestAppendAsyncWithdrawn(t *testing.T) {
	ff := &faultyFile{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	l, _ := openFaulty(t, ff)
	first, err := l.AppendAsync(&Event{Type: "decision"})
	if err != nil {
		t.Fatal(err)
	}
	<-ff.entered // the writer is inside the first group's write
	second, err := l.AppendAsync(&Event{Type: "decision"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := second.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with an ended context: %v", err)
	}
	close(ff.block)
	if seq, err := first.Wait(context.Background()); err != nil || seq != 0 {
		t.Fatalf("first: %d, %v", seq, err)
	}
	third, _ := l.AppendAsync(&Event{Type: "decision"})
	if seq, err := third.Wait(context.Background()); err != nil || seq != 1 {
		t.Fatalf("third: got seq %d, %v; want 1 (the withdrawn record used none)", seq, err)
	}
}
