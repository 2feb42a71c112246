package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func TestLogicalSize(t *testing.T) {
	tests := []struct {
		name     string
		write    func(f *os.File)
		wantEnd  int64
		wantSize int64
	}{
		{"empty", func(*os.File) {}, 0, 0},
		{"records only", func(f *os.File) { f.WriteAt([]byte("ab\ncd\n"), 0) }, 6, 6},
		{"written zeros after records", func(f *os.File) { f.WriteAt(append([]byte("ab\n"), make([]byte, 100000)...), 0) }, 3, 100003},
		{"sparse tail", func(f *os.File) { f.WriteAt([]byte("ab\n"), 0); f.Truncate(8 << 20) }, 3, 8 << 20},
		{"hole, then data", func(f *os.File) { f.WriteAt([]byte("ab\n"), 0); f.WriteAt([]byte("x"), 5<<20); f.Truncate(8 << 20) }, 5<<20 + 1, 8 << 20},
		{"zeros inside, zeros after", func(f *os.File) { f.WriteAt([]byte("ab\n\x00\x00\x00cd"), 0); f.Truncate(70000) }, 8, 70000},
		{"all zeros", func(f *os.File) { f.Truncate(5000) }, 0, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tt.write(f)
			end, size, err := logicalSize(f)
			if err != nil || end != tt.wantEnd || size != tt.wantSize {
				t.Errorf("logicalSize: got %d, %d, %v; want %d, %d", end, size, err, tt.wantEnd, tt.wantSize)
			}
		})
	}
}

// waitPrepared waits until l has a prepared segment to rotate into.
func waitPrepared(t *testing.T, l *Log) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !l.prep.isReady(); {
		if time.Now().After(deadline) {
			t.Fatal("no segment was prepared within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// openPrealloc opens a log with fsync (so that segments are preallocated)
// and waits until its first prepared file is ready.
func openPrealloc(t *testing.T, dir string, opts Options) *Log {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = stepClock(time.Millisecond)
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	waitPrepared(t, l)
	return l
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		out = append(out, s.path)
	}
	return out
}

func TestPreallocatedSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openPrealloc(t, dir, Options{SegmentMaxBytes: 4 << 10})
	appendN(t, l, 1) // into the prepared file, which replaces the empty first segment
	if !l.w.padded || l.w.fileEnd != 4<<10 {
		t.Fatalf("first record: padded %v, file %d bytes; want a preallocated 4 KiB segment", l.w.padded, l.w.fileEnd)
	}
	for range 60 { // ~14 KB: several rotations
		waitPrepared(t, l)
		appendN(t, l, 1)
	}
	segs := segmentFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("got %d segments, want rotations", len(segs))
	}
	for _, p := range segs[:len(segs)-1] {
		if b := readFile(t, p); bytes.IndexByte(b, 0) >= 0 || b[len(b)-1] != '\n' {
			t.Errorf("%s: a segment that is not the newest has padding", filepath.Base(p))
		}
	}
	newest := readFile(t, segs[len(segs)-1])
	if len(newest) != 4<<10 || newest[len(newest)-1] != 0 {
		t.Errorf("newest segment: %d bytes, want the prepared 4 KiB ending in zeros", len(newest))
	}
	// A live log verifies: the padding is not a torn tail.
	rep, err := Verify(dir)
	if err != nil || rep.Records != 61 {
		t.Fatalf("Verify while open: %+v, %v; want 61 records", rep, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range segmentFiles(t, dir) {
		if b := readFile(t, p); bytes.IndexByte(b, 0) >= 0 {
			t.Errorf("%s: padding left after Close", filepath.Base(p))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, segmentsDir, nextSegmentFile)); !os.IsNotExist(err) {
		t.Errorf("prepared file left after Close: %v", err)
	}
	if rep, err := Verify(dir); err != nil || rep.Records != 61 {
		t.Fatalf("Verify after Close: %+v, %v", rep, err)
	}
}

// TestPreallocGrows checks that prepared files double from minPrealloc up
// to the segment size limit.
func TestPreallocGrows(t *testing.T) {
	p := newPreparer(t.TempDir(), 5<<20, logrus.New())
	var got []int64
	for range 5 {
		got = append(got, p.next)
		p.ready.Store(true)
		if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p.path, nil)
		f, _, err := p.take(filepath.Join(filepath.Dir(p.path), "x.log"))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	want := []int64{1 << 20, 2 << 20, 4 << 20, 5 << 20, 5 << 20}
	if !slices.Equal(got, want) {
		t.Errorf("prepared sizes: got %v, want %v", got, want)
	}
}

// crashImage copies the files of the open log in dir, as a crash would
// leave them (the writer is idle: every Append returned).
func crashImage(t *testing.T, dir string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "crashed")
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(img, rel), 0o700)
		}
		if d.Name() == "LOCK" || d.Name() == nextSegmentFile {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(img, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestCrashInPreallocatedSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openPrealloc(t, dir, Options{})
	appendN(t, l, 10)
	if !l.w.padded {
		t.Fatal("the log is not writing into a preallocated segment")
	}
	newest := func(img string) string { s := segmentFiles(t, img); return s[len(s)-1] }

	t.Run("padding only", func(t *testing.T) {
		img := crashImage(t, dir)
		before := readFile(t, newest(img))
		l2 := openPrealloc(t, img, Options{})
		if got := l2.Size(); got != 10 {
			t.Fatalf("Size: got %d, want 10 and no recovery record", got)
		}
		if !l2.w.padded || l2.w.segSize != int64(bytes.IndexByte(before, 0)) {
			t.Errorf("reopened: padded %v at %d; want to go on writing over the padding", l2.w.padded, l2.w.segSize)
		}
		appendN(t, l2, 3)
		if err := l2.Close(); err != nil {
			t.Fatal(err)
		}
		if rep, err := Verify(img); err != nil || rep.Records != 13 {
			t.Fatalf("Verify: %+v, %v", rep, err)
		}
	})

	t.Run("torn group with a hole", func(t *testing.T) {
		img := crashImage(t, dir)
		seg := newest(img)
		b := readFile(t, seg)
		end := int64(bytes.IndexByte(b, 0))
		lines := bytes.SplitAfter(b[:end], []byte("\n"))
		// An unacknowledged group, written out of order: half a record,
		// a page that never reached the disk, then a whole record line.
		f, err := os.OpenFile(seg, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(lines[2][:40], end)
		f.WriteAt(lines[3], end+4096+100)
		f.Close()
		if _, err := Verify(img); err == nil {
			t.Fatal("Verify accepts a torn tail in a preallocated segment")
		}
		l2 := openPrealloc(t, img, Options{})
		if got := l2.Size(); got != 11 {
			t.Fatalf("Size: got %d, want 10 records and a recovery record", got)
		}
		rec, err := l2.Record(10)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(rec), `"type":"recovery"`) || !strings.Contains(string(rec), `"cut_bytes":`+strconv.Itoa(4096+100+len(lines[3]))) {
			t.Errorf("recovery record: %s", rec)
		}
		appendN(t, l2, 2)
		if err := l2.Close(); err != nil {
			t.Fatal(err)
		}
		after := readFile(t, seg)
		if !bytes.HasPrefix(after, b[:end]) {
			t.Error("recovery changed acknowledged records")
		}
		if rep, err := Verify(img); err != nil || rep.Records != 13 {
			t.Fatalf("Verify after recovery: %+v, %v", rep, err)
		}
	})
}

func TestVerifyRefusesPaddingInOlderSegment(t *testing.T) {
	l, dir := openTest(t, Options{SegmentMaxBytes: 2000})
	appendN(t, l, 12)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, dir)
	if len(segs) < 2 {
		t.Fatalf("got %d segments, want 2 or more", len(segs))
	}
	// Trailing zeros in the newest segment are padding...
	writeFile(t, segs[len(segs)-1], append(readFile(t, segs[len(segs)-1]), make([]byte, 3000)...))
	if _, err := Verify(dir); err != nil {
		t.Fatalf("Verify with padding in the newest segment: %v", err)
	}
	// ...in any other, an error.
	writeFile(t, segs[0], append(readFile(t, segs[0]), make([]byte, 10)...))
	checkVerifyError(t, dir, VerifyError{Segment: filepath.Base(segs[0]), Seq: -1, Reason: "10 bytes of NUL padding after the last record of a segment that is not the newest"})
}

// TestPreallocFailureFallsBack checks that a preparer that cannot create its
// file leaves the log writing by extending, and does not retry at once.
func TestPreallocFailureFallsBack(t *testing.T) {
	p := newPreparer(filepath.Join(t.TempDir(), "missing"), 1<<20, logrus.New())
	p.start()
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	<-done
	if p.isReady() {
		t.Fatal("a failed fill reports a prepared file")
	}
	p.start()
	p.mu.Lock()
	running := p.running
	p.mu.Unlock()
	if running {
		t.Error("start retried at once after a failure")
	}
	f, _, err := p.take(filepath.Join(t.TempDir(), "x.log"))
	if f != nil || err != nil {
		t.Errorf("take after a failure: %v, %v; want nothing", f, err)
	}
}
