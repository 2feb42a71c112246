package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultyFile wraps a segment file and fails or blocks on demand.
type faultyFile struct {
	segmentFile
	failWrite, failSync, halfWrite atomic.Bool
	block                          chan struct{} // if non-nil, Write waits on it
	entered                        chan struct{} // signalled when Write starts
	syncBlock                      chan struct{} // if non-nil, Sync waits on it
	syncEntered                    chan struct{} // if non-nil, signalled when Sync starts
	writes                         atomic.Int64  // Write calls
}

func (f *faultyFile) WriteAt(b []byte, off int64) (int, error) {
	f.writes.Add(1)
	if f.entered != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
	}
	if f.block != nil {
		<-f.block
	}
	if f.halfWrite.Load() {
		n, _ := f.segmentFile.WriteAt(b[:len(b)/2], off)
		return n, errors.New("injected short write")
	}
	if f.failWrite.Load() {
		return 0, errors.New("injected write error")
	}
	return f.segmentFile.WriteAt(b, off)
}

func (f *faultyFile) Sync() error {
	if f.syncEntered != nil {
		f.syncEntered <- struct{}{}
	}
	if f.syncBlock != nil {
		<-f.syncBlock
	}
	if f.failSync.Load() {
		return errors.New("injected fsync error")
	}
	return f.segmentFile.Sync()
}

func openFaulty(t *testing.T, ff *faultyFile) (*Log, string) {
	t.Helper()
	return openTest(t, Options{wrapFile: func(f segmentFile) segmentFile {
		ff.segmentFile = f
		return ff
	}})
}

func TestAppendFailsClosed(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*faultyFile)
	}{
		{"write error", func(f *faultyFile) { f.failWrite.Store(true) }},
		{"short write", func(f *faultyFile) { f.halfWrite.Store(true) }},
		{"fsync error", func(f *faultyFile) { f.failSync.Store(true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ff := &faultyFile{}
			l, dir := openTaggedSync(t, ff)
			appendN(t, l, 3)
			tt.fault(ff)
			if _, err := l.Append(context.Background(), &Event{Type: "decision"}); !errors.Is(err, ErrFailed) {
				t.Fatalf("Append during fault: got %v, want ErrFailed", err)
			}
			// The failure is sticky even once the disk behaves again.
			ff.failWrite.Store(false)
			ff.failSync.Store(false)
			ff.halfWrite.Store(false)
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if _, err := l.Append(context.Background(), &Event{Type: "decision"}); !errors.Is(err, ErrFailed) {
						t.Errorf("Append after fault: got %v, want ErrFailed", err)
					}
				})
			}
			wg.Wait()
			if got := l.Size(); got != 3 {
				t.Errorf("Size: got %d, want 3", got)
			}
			if err := l.Close(); !errors.Is(err, ErrFailed) {
				t.Errorf("Close: got %v, want ErrFailed", err)
			}
			rep, err := Verify(dir)
			if tt.name == "fsync error" {
				// The bytes reached the file; only their durability is unknown.
				if err != nil || rep.Records != 4 {
					t.Errorf("Verify: got %+v, %v; want 4 records", rep, err)
				}
				return
			}
			if err != nil || rep.Records != 3 {
				t.Errorf("Verify: got %+v, %v; want 3 records and no half record", rep, err)
			}
		})
	}
}

// TestAppendPipelined holds one group's fsync and checks what the writer
// does meanwhile: it stages the records that arrive but writes nothing until
// the fsync returns, acknowledges nobody early, and when that fsync fails,
// fails the staged group too.
func TestAppendPipelined(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fsync fails=%v", fail), func(t *testing.T) {
			ff := &faultyFile{}
			l, _ := openTaggedSync(t, ff)
			appendN(t, l, 2)
			ff.syncEntered, ff.syncBlock = make(chan struct{}, 8), make(chan struct{})
			ctx := context.Background()
			first := make(chan error, 1)
			go func() { _, err := l.Append(ctx, &Event{Type: "decision", RequestID: "a"}); first <- err }()
			<-ff.syncEntered // group {a} is written and its fsync is held
			writes := ff.writes.Load()
			second := make(chan error, 3)
			for _, id := range []string{"b", "c", "d"} {
				go func() { _, err := l.Append(ctx, &Event{Type: "decision", RequestID: id}); second <- err }()
			}
			waitFor(t, func() bool { return l.Stats().Staged == 6 })
			if got := ff.writes.Load(); got != writes {
				t.Errorf("writes during a held fsync: %d, want none", got-writes)
			}
			if got := l.Size(); got != 2 {
				t.Errorf("Size during a held fsync = %d, want 2", got)
			}
			select {
			case err := <-first:
				t.Fatalf("Append returned before its fsync: %v", err)
			default:
			}
			ff.failSync.Store(fail)
			close(ff.syncBlock)
			errs := []error{<-first, <-second, <-second, <-second}
			for i, err := range errs {
				if fail != errors.Is(err, ErrFailed) {
					t.Errorf("Append %d: err = %v, want failure %v", i, err, fail)
				}
			}
			want := uint64(6)
			if fail {
				want = 2
			} else if got := ff.writes.Load() - writes; got != 1 {
				t.Errorf("writes for the three records staged during the fsync: %d, want 1", got)
			}
			if got := l.Size(); got != want {
				t.Errorf("Size = %d, want %d", got, want)
			}
		})
	}
}

// openTaggedSync is openFaulty with fsync enabled, so Sync faults are seen.
func openTaggedSync(t *testing.T, ff *faultyFile) (*Log, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := Open(dir, Options{Clock: stepClock(time.Millisecond), wrapFile: func(f segmentFile) segmentFile {
		ff.segmentFile = f
		return ff
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, dir
}

func TestAppendFailsWhenFileIsClosed(t *testing.T) {
	l, _ := openTest(t, Options{})
	appendN(t, l, 1)
	if err := l.w.f.Close(); err != nil { // the writer is idle: Append returned
		t.Fatal(err)
	}
	_, err := l.Append(context.Background(), &Event{Type: "decision"})
	if !errors.Is(err, ErrFailed) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("got %v, want ErrFailed wrapping os.ErrClosed", err)
	}
}

func TestAppendConcurrent(t *testing.T) {
	const writers, each = 64, 40
	l, dir := openTest(t, Options{MaxBatch: 16, SegmentMaxBytes: 8 << 10})
	seqs := make([][]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				seq, err := l.Append(context.Background(), &Event{Type: "decision", RequestID: strconv.Itoa(w*each + i)})
				if err != nil {
					t.Error(err)
					return
				}
				seqs[w] = append(seqs[w], seq)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != writers*each || rep.Segments < 2 {
		t.Fatalf("got %+v, want %d records in several segments", rep, writers*each)
	}
	// Each returned seq is the seq of that caller's own record.
	bySeq := readRequestIDs(t, dir)
	seen := make(map[uint64]bool)
	for w := range writers {
		for i, seq := range seqs[w] {
			if seen[seq] {
				t.Fatalf("seq %d returned twice", seq)
			}
			seen[seq] = true
			if got, want := bySeq[seq], strconv.Itoa(w*each+i); got != want {
				t.Fatalf("seq %d holds request %q, but was returned to the writer of %q", seq, got, want)
			}
		}
	}
}

// readRequestIDs maps seq to request_id over every segment of dir.
func readRequestIDs(t *testing.T, dir string) map[uint64]string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[uint64]string)
	for _, s := range segs {
		f, err := os.Open(s.path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, MaxLineBytes+1)
		for sc.Scan() {
			r, err := ParseRecord(sc.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			out[r.Seq] = r.Event.RequestID
		}
		f.Close()
	}
	return out
}

func TestAppendContextCancel(t *testing.T) {
	ff := &faultyFile{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	l, dir := openFaulty(t, ff)

	// A record the writer is already writing: the caller stops waiting,
	// the record is still written.
	ctx1, cancel1 := context.WithCancel(context.Background())
	res1 := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx1, &Event{Type: "decision", RequestID: "in-flight"})
		res1 <- err
	}()
	<-ff.entered // the writer is inside Write with the first record
	cancel1()
	if err := <-res1; !errors.Is(err, context.Canceled) {
		t.Fatalf("in-flight Append: got %v, want context.Canceled", err)
	}

	// A record still queued behind it: withdrawn, no seq used.
	ctx2, cancel2 := context.WithCancel(context.Background())
	res2 := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx2, &Event{Type: "decision", RequestID: "withdrawn"})
		res2 <- err
	}()
	waitPending(t, l, 1)
	cancel2()
	if err := <-res2; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued Append: got %v, want context.Canceled", err)
	}

	close(ff.block)
	seq, err := l.Append(context.Background(), &Event{Type: "decision", RequestID: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if seq != 1 {
		t.Errorf("seq after a withdrawn record: got %d, want 1 (no gap)", seq)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
	got := readRequestIDs(t, dir)
	want := map[uint64]string{0: "in-flight", 1: "after"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("records: got %v, want %v", got, want)
	}

	if _, err := l.Append(context.Background(), &Event{Type: "late"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: got %v, want ErrClosed", err)
	}
}

// waitPending waits until n Appends are queued behind the writer.
func waitPending(t *testing.T, l *Log, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		l.mu.Lock()
		got := len(l.pending)
		l.mu.Unlock()
		if got >= n {
			return
		}
	}
	t.Fatalf("%d Appends never queued", n)
}

func TestCloseFlushesPending(t *testing.T) {
	l, dir := openTest(t, Options{MaxBatch: 4})
	var ok atomic.Uint64
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			_, err := l.Append(context.Background(), &Event{Type: "decision", RequestID: strconv.Itoa(i)})
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, ErrClosed):
				t.Errorf("Append racing Close: got %v, want nil or ErrClosed", err)
			}
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != ok.Load() {
		t.Errorf("records on disk %d, acknowledged %d: every acknowledged record must be there, and nothing else", rep.Records, ok.Load())
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: got %v, want ErrClosed", err)
	}
}

func TestAppendCancelledContext(t *testing.T) {
	l, _ := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, &Event{Type: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if l.Size() != 0 {
		t.Errorf("Size: got %d, want 0", l.Size())
	}
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

// TestAppendFailsWhenStoredHashesCannotBeWritten: the group's tree hashes
// are written while its fsync runs; when that fails the group is not
// acknowledged and the log fails closed.
func TestAppendFailsWhenStoredHashesCannotBeWritten(t *testing.T) {
	l, _ := openTest(t, Options{})
	appendN(t, l, 2)
	if err := l.w.tree.f.Close(); err != nil { // the writer is idle: Append returned
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), &Event{Type: "decision"}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append with the hashes file closed: err = %v, want ErrFailed", err)
	}
	if got := l.Size(); got != 2 {
		t.Errorf("Size = %d, want 2", got)
	}
	if _, err := l.Append(context.Background(), &Event{Type: "decision"}); !errors.Is(err, ErrFailed) {
		t.Errorf("Append after the failure: err = %v, want ErrFailed", err)
	}
}
