package audit

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// stepClock returns a clock that starts at a fixed instant and advances by
// step on every call, so record times are deterministic.
func stepClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 3, 14, 15, 9, 26, 535000000, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := t
		t = t.Add(step)
		return now
	}
}

// openTest opens a log in a fresh directory with a deterministic clock and
// no fsync (tests measure correctness, not durability).
func openTest(t testing.TB, opts Options) (*Log, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "audit")
	if opts.Clock == nil {
		opts.Clock = stepClock(time.Millisecond)
	}
	opts.NoSync = true
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, dir
}

// appendN appends n small decision events and fails the test on error.
func appendN(t testing.TB, l *Log, n int) {
	t.Helper()
	for i := range n {
		if _, err := l.Append(context.Background(), &Event{Type: "decision", RequestID: "req-" + strconv.Itoa(i), Action: "llm.invoke"}); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// firstSegment is the path of segment 0 in dir.
func firstSegment(dir string) string {
	return filepath.Join(dir, segmentsDir, segmentName(0))
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
