package logbuf

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that counts writes, safe for concurrent use.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) get() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.writes
}

func TestInfoLinesWaitWarningsDoNot(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, Options{Every: time.Hour})
	defer w.Close()
	w.Write([]byte(`{"level":"info","msg":"one"}` + "\n"))
	w.Write([]byte(`{"level":"info","msg":"two"}` + "\n"))
	if got, n := out.get(); n != 0 || got != "" {
		t.Fatalf("info lines written at once: %d writes, %q", n, got)
	}
	w.Write([]byte(`time=now level=error msg=three` + "\n"))
	want := `{"level":"info","msg":"one"}` + "\n" + `{"level":"info","msg":"two"}` + "\n" + "time=now level=error msg=three\n"
	if got, n := out.get(); n != 1 || got != want {
		t.Fatalf("after an error line: %d writes, %q; want 1 write of %q", n, got, want)
	}
}

func TestFlushEveryIntervalAndAtClose(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, Options{Every: 20 * time.Millisecond})
	w.Write([]byte("level=info msg=a\n"))
	deadline := time.Now().Add(5 * time.Second)
	for got, _ := out.get(); got == ""; got, _ = out.get() {
		if time.Now().After(deadline) {
			t.Fatal("line not written within 5s of a 20ms interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w2 := New(&syncBuffer{}, Options{Every: time.Hour})
	out2 := w2.out.(*syncBuffer)
	w2.Write([]byte("level=info msg=b\n"))
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := out2.get(); got != "level=info msg=b\n" {
		t.Fatalf("Close wrote %q", got)
	}
	w.Close()
}

func TestFullBufferIsWritten(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, Options{Size: 64, Every: time.Hour})
	defer w.Close()
	line := []byte("level=info msg=0123456789012345678901234\n") // 40 bytes
	w.Write(line)
	w.Write(line) // would pass 64: the first goes out first
	if got, n := out.get(); n != 1 || got != string(line) {
		t.Fatalf("%d writes, %q; want the first line alone", n, got)
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, Options{Size: 256, Every: time.Millisecond})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				w.Write([]byte("level=info msg=goroutine" + string(rune('a'+i)) + "\n"))
			}
		})
	}
	wg.Wait()
	w.Close()
	got, _ := out.get()
	lines := bytes.Split(bytes.TrimSuffix([]byte(got), []byte("\n")), []byte("\n"))
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, l := range lines {
		if !bytes.HasPrefix(l, []byte("level=info msg=goroutine")) || len(l) != len("level=info msg=goroutinea") {
			t.Fatalf("torn line %q", l)
		}
	}
}
