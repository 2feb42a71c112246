package audit

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestAppendBatchConsecutive appends batches while single Appends run
// concurrently: each batch's records get consecutive seqs, in order, and
// the log verifies.
func TestAppendBatchConsecutive(t *testing.T) {
	l, dir := openTest(t, Options{MaxBatch: 7}) // batches span groups
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := l.Append(ctx, &Event{Type: "decision", RequestID: "single-" + strconv.Itoa(w*100+i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	firsts := make([]uint64, 10)
	for b := range firsts {
		wg.Go(func() {
			evs := make([]*Event, 20)
			for i := range evs {
				evs[i] = &Event{Type: "tool.call", RequestID: "batch-" + strconv.Itoa(b), Action: strconv.Itoa(i)}
			}
			first, err := l.AppendBatch(ctx, evs)
			if err != nil {
				t.Error(err)
			}
			firsts[b] = first
		})
	}
	wg.Wait()
	for b, first := range firsts {
		for i := range 20 {
			line, err := l.Record(first + uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			var rec struct {
				RequestID string `json:"request_id"`
				Action    string `json:"action"`
			}
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Fatal(err)
			}
			if want := "batch-" + strconv.Itoa(b); rec.RequestID != want || rec.Action != strconv.Itoa(i) {
				t.Errorf("record %d: got %s/%s, want %s/%d", first+uint64(i), rec.RequestID, rec.Action, want, i)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir)
	if err != nil || rep.Records != 4*50+10*20 {
		t.Fatalf("Verify: %+v, %v; want %d records", rep, err, 4*50+10*20)
	}
}

func TestAppendBatchRefusesBadInput(t *testing.T) {
	l, _ := openTest(t, Options{})
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		evs  []*Event
		want string
	}{
		{"empty", nil, "no events"},
		{"nil event", []*Event{{Type: "decision"}, nil}, "event 1 is nil"},
	} {
		if _, err := l.AppendBatch(ctx, tt.evs); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if l.Size() != 0 {
		t.Errorf("Size = %d after refused batches, want 0", l.Size())
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.AppendBatch(cancelled, []*Event{{Type: "decision"}}); err == nil {
		t.Error("AppendBatch with a cancelled context succeeded")
	}
}
