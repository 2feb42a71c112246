package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/mod/sumdb/note"
)

var (
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("audit: log is closed")
	// ErrFailed is wrapped by every Append error after a write or fsync
	// failure: the log refuses further records and callers must fail closed.
	ErrFailed = errors.New("audit: log has failed")
	// ErrCorrupt is wrapped by Open when the log on disk is damaged in a way
	// that is not a torn tail (run Verify for details).
	ErrCorrupt = errors.New("audit: log is corrupt")
	// ErrKeyMismatch is wrapped by Open when Options.Verifier does not
	// verify the latest stored checkpoint (see KeyError).
	ErrKeyMismatch = errors.New("audit: stored checkpoints were signed by another key")
	// ErrTooLarge is wrapped by Append when an event does not fit in MaxLineBytes.
	ErrTooLarge = errors.New("audit: event too large")
)

// Defaults for Options.
const (
	DefaultMaxBatch        = 512
	DefaultSegmentMaxBytes = 64 << 20
	DefaultMaxLinger       = time.Millisecond
)

// Options configure a Log. The zero value is usable.
type Options struct {
	Clock           func() time.Time   // default time.Now
	Logger          logrus.FieldLogger // default: discard
	MaxBatch        int                // records per write+fsync, default 512
	SegmentMaxBytes int64              // rotate before a segment would exceed this, default 64 MiB
	SegmentMaxAge   time.Duration      // rotate before a record that is this much newer than the segment's first; 0: no limit
	NoSync          bool               // skip fsync: tests and benchmarks only, never in production
	// NoPreallocate writes each segment by extending an empty file instead
	// of over a zero-filled one prepared in the background (see
	// docs/audit-format.md, "Padding"). NoSync implies it.
	NoPreallocate bool
	// MaxLinger bounds how long the writer waits for the callers of its last
	// batch to queue their next records before it writes (group commit
	// under steady concurrency). Default 1ms; negative: never wait.
	MaxLinger time.Duration

	// Verifier, when set, must verify the latest stored checkpoint, or Open
	// refuses the log (ErrKeyMismatch): pass the verifier of the key that
	// will sign checkpoints, so a replaced key is noticed at startup.
	Verifier note.Verifier

	// wrapFile lets internal tests inject write and fsync failures.
	wrapFile func(segmentFile) segmentFile
}

// segmentFile is what the writer needs from an open segment. Records are
// written at the segment's end with WriteAt: over the zeros of a
// preallocated file, or extending a file that is not.
type segmentFile interface {
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Close() error
}

var _ segmentFile = (*os.File)(nil)

// Log is an append-only, hash-chained, group-committed audit log stored in a
// directory of segment files. It is safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	log  logrus.FieldLogger
	lock *os.File // flock'd dir/LOCK

	mu         sync.Mutex
	cond       *sync.Cond
	pending    []*entry
	lingerN    uint64    // run's linger timer generation; a stale timer does not end a later wait
	lingerT    uint64    // the generation whose timer fired
	lingerEnd  time.Time // when the staged group's linger ends; zero before its first
	lingerWant int       // while the writer lingers: the arrivals it waits for; else 0
	// The syncer: run hands it one written group at a time on syncC.
	syncIdle    bool          // no group is being fsync'd
	spare       []*entry      // the syncer's last group slice, for reuse
	lastGroup   int           // records in the syncer's last group
	syncC       chan syncReq  // capacity 1
	treeDone    chan error    // run tells the syncer the group it handed over is in the tree
	syncStarted chan struct{} // the syncer tells run it is starting a handshake group's fsync
	syncDone    chan struct{} // closed when the syncer exits
	closed      bool
	failed      error // wraps ErrFailed once set

	size     atomic.Uint64 // records durably written (= next seq)
	staged   atomic.Uint64 // records given a seq by the writer
	syncs    atomic.Uint64 // fsyncs of segment files, for benchmarks
	syncT    atomic.Int64  // nanoseconds spent in those fsyncs, for benchmarks
	lastSync atomic.Int64  // nanoseconds of the last fsync, for lingering
	done     chan struct{} // closed when the writer goroutine exits

	w    writer    // owned by the writer goroutine after Open
	prep *preparer // the next segment's preallocated file; nil with NoPreallocate
	rd   *Reader   // records, hashes and proofs up to Size
	ckpt *ckptLog  // dir/checkpoints
}

// entry is one Append waiting for the writer. Entries are pooled, but only
// those the writer finished go back: a withdrawn or abandoned entry may
// still be referenced by the writer's queue.
type entry struct {
	buf   []byte // the event's JSON object, starting with '{'
	body  []byte // buf[1:]
	state atomic.Int32
	done  chan struct{} // buffered: the writer sends once, after seq and err are set
	seq   uint64
	err   error
}

// finish records the outcome of e and wakes its caller. The writer calls it
// exactly once per claimed entry and does not touch e afterwards.
func (e *entry) finish(seq uint64, err error) {
	e.seq, e.err = seq, err
	e.done <- struct{}{}
}

var entryPool = sync.Pool{New: func() any {
	return &entry{buf: make([]byte, 0, 1024), done: make(chan struct{}, 1)}
}}

// putEntry returns a finished entry to entryPool, dropping a buffer that
// grew too large to keep.
func putEntry(e *entry) {
	if cap(e.buf) > 64<<10 {
		e.buf = nil
	}
	e.buf, e.body, e.err = e.buf[:0], nil, nil
	entryPool.Put(e)
}

const (
	entryQueued int32 = iota
	entryClaimed
	entryCancelled
)

// Open opens (creating if needed) the log in dir and starts its writer.
//
// Open first reads the latest signed checkpoint stored in dir/checkpoints.
// If the last segment ends in a torn record (bytes after the last newline,
// or trailing complete lines that are not records) beyond that checkpoint's
// size, Open saves the cut bytes under dir/torn/, truncates them, and
// appends a "recovery" record saying what was cut. Any other damage (a
// record that does not chain, a bad record followed by good ones, a bad
// line at a seq the checkpoint covers) makes Open fail with an error
// wrapping ErrCorrupt, and so does a log that, once recovered, is shorter
// than the checkpoint or whose tree at the checkpoint's size has another
// root: the log is never silently rewritten, and the key never signs a
// fork. Open verifies the last segment and the latest checkpoint's root
// only; Verify checks everything.
func Open(dir string, opts Options) (*Log, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Logger = l
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxLinger == 0 {
		opts.MaxLinger = DefaultMaxLinger
	}
	if opts.SegmentMaxBytes <= 0 {
		opts.SegmentMaxBytes = DefaultSegmentMaxBytes
	}
	l := &Log{dir: dir, opts: opts, log: opts.Logger.WithField("component", "audit"), done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	l.syncIdle = true
	l.syncC, l.syncDone, l.treeDone = make(chan syncReq, 1), make(chan struct{}), make(chan error, 1)
	l.syncStarted = make(chan struct{}, 1)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l.lock = lock
	if err := l.openCheckpoints(); err != nil {
		lock.Close()
		return nil, err
	}
	cut, err := l.recover(l.ckpt.size)
	if err != nil {
		l.ckpt.close()
		lock.Close()
		return nil, err
	}
	segs, err := listSegments(dir)
	if err == nil {
		err = l.openTree(segs, l.w.seq)
	}
	if err != nil {
		l.w.f.Close()
		l.ckpt.close()
		lock.Close()
		return nil, err
	}
	l.size.Store(l.w.seq)
	l.staged.Store(l.w.seq)
	if l.rd, err = openReader(dir, l.Size); err == nil {
		if err = l.checkCheckpoint(); err != nil {
			l.rd.Close()
		}
	}
	if err != nil {
		l.w.f.Close()
		l.w.tree.close()
		l.ckpt.close()
		lock.Close()
		return nil, err
	}
	if !opts.NoPreallocate && !opts.NoSync {
		l.prep = newPreparer(dir, opts.SegmentMaxBytes, l.log)
		l.prep.start()
	} else {
		_ = os.Remove(filepath.Join(dir, segmentsDir, nextSegmentFile))
	}
	go l.run()
	if cut != nil {
		seq, err := l.Append(context.Background(), cut.event())
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("audit: open: record recovery: %w", err)
		}
		l.log.WithFields(logrus.Fields{"segment": cut.segment, "offset": cut.offset, "cut_bytes": cut.bytes, "recovery_seq": seq}).
			Warn("audit: torn tail truncated and recorded")
	}
	return l, nil
}

// Append writes ev as the next record and returns its sequence number once
// the record is written and fsync'd. Concurrent Appends share one write and
// one fsync (group commit).
//
// After a write or fsync failure every Append returns an error wrapping
// ErrFailed; after Close, ErrClosed. If ctx ends before the writer has taken
// the record, the record is withdrawn (no seq is used, no gap). If ctx ends
// while the record is being written, Append stops waiting and returns an
// error; the record may still become durable, so treat it as a failure.
func (l *Log) Append(ctx context.Context, ev *Event) (uint64, error) {
	if ev == nil {
		return 0, errors.New("audit: append: nil event")
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("audit: append: %w", err)
	}
	e, err := newEntry(ev)
	if err != nil {
		return 0, err
	}
	one := [1]*entry{e}
	if err := l.enqueue(one[:]); err != nil {
		return 0, err
	}
	return e.await(ctx)
}

// AppendBatch writes evs as consecutive records and returns the first one's
// sequence number once all of them are written and fsync'd. It is Append
// for a caller that has several records at once (the tool calls of one
// answer, an importer): they share fsyncs with each other and with
// concurrent Appends, and one goroutine can keep the disk busy.
//
// Errors are Append's. If ctx ends before the writer has taken them, the
// records not yet taken are withdrawn; the error then says whether some
// may have become durable.
func (l *Log) AppendBatch(ctx context.Context, evs []*Event) (uint64, error) {
	if len(evs) == 0 {
		return 0, errors.New("audit: append batch: no events")
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("audit: append batch: %w", err)
	}
	es := make([]*entry, 0, len(evs))
	for i, ev := range evs {
		var err error
		var e *entry
		if ev == nil {
			err = fmt.Errorf("audit: append batch: event %d is nil", i)
		} else {
			e, err = newEntry(ev)
		}
		if err != nil {
			for _, e := range es {
				putEntry(e)
			}
			return 0, err
		}
		es = append(es, e)
	}
	if err := l.enqueue(es); err != nil {
		return 0, err
	}
	var first uint64
	for i, e := range es {
		seq, err := e.await(ctx)
		if err != nil {
			for _, rest := range es[i+1:] {
				rest.withdraw()
			}
			return 0, fmt.Errorf("audit: append batch: record %d of %d: %w", i, len(es), err)
		}
		if i == 0 {
			first = seq
		}
	}
	return first, nil
}

// newEntry encodes ev into a pooled entry.
func newEntry(ev *Event) (*entry, error) {
	e := entryPool.Get().(*entry)
	e.state.Store(entryQueued)
	var err error
	e.buf, err = appendEventJSON(e.buf[:0], ev)
	if err != nil {
		putEntry(e)
		return nil, err
	}
	e.body = e.buf[1:]
	return e, nil
}

// enqueue queues es for the writer, in order and together, so they get
// consecutive seqs. On error the entries are recycled.
func (l *Log) enqueue(es []*entry) error {
	var err error
	l.mu.Lock()
	switch {
	case l.failed != nil:
		err = l.failed
	case l.closed:
		err = ErrClosed
	default:
		l.pending = append(l.pending, es...)
		// A lingering writer waits for lingerWant arrivals: waking it for
		// each one would cost a context switch per record for nothing.
		if l.lingerWant == 0 || len(l.pending) >= l.lingerWant {
			l.cond.Signal()
		}
	}
	l.mu.Unlock()
	if err != nil {
		for _, e := range es {
			putEntry(e)
		}
	}
	return err
}

// await waits for the writer to finish a queued entry, or for ctx to end:
// then it withdraws the entry if the writer has not taken it yet.
func (e *entry) await(ctx context.Context) (uint64, error) {
	select {
	case <-e.done:
		return e.result()
	case <-ctx.Done():
		if e.withdraw() {
			return 0, fmt.Errorf("audit: append withdrawn before write: %w", ctx.Err())
		}
		select {
		case <-e.done: // finished while we looked
			return e.result()
		default:
		}
		return 0, fmt.Errorf("audit: append abandoned during write, record may be durable: %w", ctx.Err())
	}
}

// withdraw takes back a queued entry the writer has not claimed. The entry
// is not recycled: the writer may still hold it in its queue.
func (e *entry) withdraw() bool { return e.state.CompareAndSwap(entryQueued, entryCancelled) }

// result returns a finished entry's outcome and recycles it.
func (e *entry) result() (uint64, error) {
	seq, err := e.seq, e.err
	putEntry(e)
	return seq, err
}

// Size returns the number of records durably written, which is also the
// seq the next record will get.
func (l *Log) Size() uint64 { return l.size.Load() }

// Dir returns the log directory.
func (l *Log) Dir() string { return l.dir }

// Close writes and fsyncs every pending record, closes the segment and
// releases the directory lock. Append after Close returns ErrClosed. Close
// returns the log's failure, if it failed.
func (l *Log) Close() error {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.cond.Signal()
	l.mu.Unlock()
	<-l.done
	if already {
		return ErrClosed
	}
	l.prep.stop()
	var errs []error
	l.mu.Lock()
	if l.failed != nil {
		errs = append(errs, l.failed)
	}
	l.mu.Unlock()
	if l.w.f != nil {
		if l.w.padded && len(errs) == 0 {
			// A closed log has no padding: its newest segment ends with
			// its last record, like every other.
			err := l.w.f.Truncate(l.w.segSize)
			if err == nil && !l.opts.NoSync {
				err = l.w.f.Sync()
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("audit: close: cut padding of %s: %w", l.w.segName, err))
			}
		}
		if err := l.w.f.Close(); err != nil && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("audit: close segment: %w", err))
		}
	}
	if len(errs) == 0 {
		if err := l.syncTree(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.w.tree.close(); err != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("audit: close tree: %w", err))
	}
	if err := l.ckpt.close(); err != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("audit: close checkpoints: %w", err))
	}
	if err := l.rd.Close(); err != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("audit: close reader: %w", err))
	}
	if err := l.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("audit: release lock: %w", err))
	}
	return errors.Join(errs...)
}
