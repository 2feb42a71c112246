package logbuf

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// Options tune a Writer. The zero value is usable.
type Options struct {
	Size  int           // bytes buffered before a write; default 64 KiB
	Every time.Duration // longest a line waits; default 200ms
}

// Writer is an io.Writer for whole log lines, safe for concurrent use.
type Writer struct {
	out   io.Writer
	size  int
	mu    sync.Mutex
	buf   []byte
	err   error // the first write error, returned by later calls
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

// New starts a Writer that writes to out.
func New(out io.Writer, opts Options) *Writer {
	if opts.Size <= 0 {
		opts.Size = 64 << 10
	}
	if opts.Every <= 0 {
		opts.Every = 200 * time.Millisecond
	}
	w := &Writer{out: out, size: opts.Size, buf: make([]byte, 0, opts.Size), stop: make(chan struct{}), done: make(chan struct{})}
	go w.flusher(opts.Every)
	return w
}

// Write buffers p, one or more whole lines. A line of level warning or
// worse is written, with everything before it, before Write returns.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf)+len(p) > w.size {
		w.flushLocked()
	}
	if len(p) > w.size || urgent(p) {
		w.buf = append(w.buf, p...)
		w.flushLocked()
		return len(p), w.err
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// Flush writes what is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	return w.err
}

// Close stops the flusher and writes what is buffered. Writes after Close
// go straight through.
func (w *Writer) Close() error {
	w.close.Do(func() {
		close(w.stop)
		<-w.done
	})
	return w.Flush()
}

func (w *Writer) flushLocked() {
	if len(w.buf) == 0 {
		return
	}
	if _, err := w.out.Write(w.buf); err != nil && w.err == nil {
		w.err = err
	}
	w.buf = w.buf[:0]
}

func (w *Writer) flusher(every time.Duration) {
	defer close(w.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			_ = w.Flush()
		}
	}
}

// urgentLevels are how logrus's JSON and text formatters write the levels
// that must not wait.
var urgentLevels = [][]byte{
	[]byte(`"level":"warning"`), []byte(`"level":"error"`), []byte(`"level":"fatal"`), []byte(`"level":"panic"`),
	[]byte("level=warning"), []byte("level=error"), []byte("level=fatal"), []byte("level=panic"),
}

func urgent(p []byte) bool {
	for _, l := range urgentLevels {
		if bytes.Contains(p, l) {
			return true
		}
	}
	return false
}
