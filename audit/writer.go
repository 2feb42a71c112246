package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// writer is the state owned by the writer goroutine: the open segment and
// the chain head.
type writer struct {
	f       segmentFile
	segName string
	segSize int64
	segTime time.Time // time of the current segment's first record
	seq     uint64    // seq of the next record
	prev    Hash      // hash of the last record line (zero before the first)
	buf     []byte
	tree    *tree
}

// run is the writer goroutine: it drains the queue in batches of at most
// MaxBatch, writes each batch with one write and one fsync, then wakes the
// batch's waiters.
func (l *Log) run() {
	defer close(l.done)
	var batch []*entry
	last, lastSync := 0, time.Duration(0) // size and fsync time of the previous batch
	for {
		l.mu.Lock()
		for len(l.pending) == 0 && !l.closed {
			l.cond.Wait()
		}
		l.gather(last, lastSync)
		if len(l.pending) == 0 {
			l.mu.Unlock()
			return
		}
		batch, l.pending = l.pending, batch[:0]
		failed := l.failed
		l.mu.Unlock()

		last = len(batch)
		t0 := time.Now()
		for rest := batch; len(rest) > 0; {
			n := min(len(rest), l.opts.MaxBatch)
			if failed == nil {
				failed = l.commit(rest[:n])
				lastSync = time.Since(t0)
			} else {
				for _, e := range rest[:n] {
					if e.state.CompareAndSwap(entryQueued, entryClaimed) {
						e.err = failed
						close(e.done)
					}
				}
			}
			rest = rest[n:]
		}
		clear(batch)
		batch = batch[:0]
	}
}

// gather is group commit's other half. The callers of the previous batch
// (last records) were woken when its fsync returned and are queueing their
// next records now; writing as soon as the first of them arrives would
// split them over two fsyncs, so the writer waits until as many are pending
// as last time, or for a quarter of the last batch's write+fsync time (at
// most MaxLinger), whichever comes first. A lone caller never waits: last
// is 1. Called with l.mu held and at least one entry pending.
func (l *Log) gather(last int, lastSync time.Duration) {
	wait := min(lastSync/4, l.opts.MaxLinger)
	if len(l.pending) >= last || wait <= 0 || l.closed {
		return
	}
	l.want = min(last, l.opts.MaxBatch)
	l.lingerN++
	gen := l.lingerN
	t := time.AfterFunc(wait, func() {
		l.mu.Lock()
		l.lingerT = gen
		l.cond.Signal()
		l.mu.Unlock()
	})
	for len(l.pending) < l.want && l.lingerT != gen && !l.closed {
		l.cond.Wait()
	}
	t.Stop()
	l.want = 1
}

// commit writes one batch and returns the log's failure if it failed.
func (l *Log) commit(chunk []*entry) error {
	w := &l.w
	w.buf = w.buf[:0]
	seq, prev := w.seq, w.prev
	claimed := chunk[:0] // filter in place: the batch belongs to run
	var err error
	var unclaimed []*entry // left over when a rotation fails mid-batch
	for i, e := range chunk {
		if !e.state.CompareAndSwap(entryQueued, entryClaimed) {
			continue // withdrawn by a cancelled caller: no seq is used
		}
		start := len(w.buf)
		now := l.opts.Clock()
		w.buf = appendLine(w.buf, seq, now, &prev, e.body)
		tooBig := w.segSize+int64(len(w.buf))+1 > l.opts.SegmentMaxBytes
		tooOld := l.opts.SegmentMaxAge > 0 && now.Sub(w.segTime) >= l.opts.SegmentMaxAge
		if (tooBig || tooOld) && w.segSize+int64(start) > 0 {
			// The line does not fit: finish this segment, then start the
			// next one with this line. The chain runs across segments.
			if err = l.flush(w.buf[:start]); err == nil {
				err = l.syncTree()
			}
			if err == nil {
				err = l.rotate(seq)
			}
			if err != nil {
				unclaimed = chunk[i+1:]
				claimed = append(claimed, e)
				break
			}
			w.buf = w.buf[:copy(w.buf, w.buf[start:])]
			start = 0
		}
		if w.segSize+int64(start) == 0 {
			w.segTime = now
		}
		prev = HashLine(w.buf[start:])
		if err = w.tree.add(w.buf[start:], w.segSize+int64(start)); err != nil {
			err = fmt.Errorf("%w: %w", ErrFailed, err)
			unclaimed = chunk[i+1:]
			claimed = append(claimed, e)
			break
		}
		w.buf = append(w.buf, '\n')
		e.seq = seq
		seq++
		claimed = append(claimed, e)
	}
	if err == nil && len(w.buf) > 0 {
		err = l.flush(w.buf)
	}
	if err == nil {
		if terr := w.tree.flush(); terr != nil {
			err = fmt.Errorf("%w: %w", ErrFailed, terr)
		}
	}
	if err != nil {
		l.mu.Lock()
		l.failed = err
		l.mu.Unlock()
		l.log.WithError(err).Error("audit: log failed; refusing further records")
		for _, e := range claimed {
			e.seq, e.err = 0, err
			close(e.done)
		}
		for _, e := range unclaimed {
			if e.state.CompareAndSwap(entryQueued, entryClaimed) {
				e.err = err
				close(e.done)
			}
		}
		return err
	}
	w.seq, w.prev = seq, prev
	l.size.Store(seq)
	for _, e := range claimed {
		close(e.done)
	}
	return nil
}

// flush writes b to the current segment and fsyncs it. On a write error it
// tries to cut the segment back so no half record is left behind.
func (l *Log) flush(b []byte) error {
	w := &l.w
	if len(b) > 0 {
		if _, err := w.f.Write(b); err != nil {
			_ = w.f.Truncate(w.segSize)
			return fmt.Errorf("%w: write %s: %w", ErrFailed, w.segName, err)
		}
		w.segSize += int64(len(b))
	}
	if !l.opts.NoSync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("%w: fsync %s: %w", ErrFailed, w.segName, err)
		}
		l.syncs.Add(1)
	}
	return nil
}

// syncTree writes and fsyncs the stored hashes, so that Open can trust them
// for every segment but the newest.
func (l *Log) syncTree() error {
	t := l.w.tree
	if err := t.flush(); err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	if !l.opts.NoSync {
		if err := t.sync(); err != nil {
			return fmt.Errorf("%w: %w", ErrFailed, err)
		}
	}
	return nil
}

// rotate closes the current segment (already fsync'd by flush) and creates
// the segment whose first record is first.
func (l *Log) rotate(first uint64) error {
	if err := l.w.f.Close(); err != nil {
		return fmt.Errorf("%w: close %s: %w", ErrFailed, l.w.segName, err)
	}
	l.w.f = nil
	if err := l.createSegment(first); err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return nil
}

// createSegment creates an empty segment starting at first, makes its
// directory entry durable and makes it the current segment.
func (l *Log) createSegment(first uint64) error {
	name := segmentName(first)
	sdir := filepath.Join(l.dir, segmentsDir)
	f, err := os.OpenFile(filepath.Join(sdir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit: create segment: %w", err)
	}
	if err := l.syncDir(sdir); err != nil {
		f.Close()
		return err
	}
	l.setSegment(f, name, 0)
	return nil
}

func (l *Log) setSegment(f *os.File, name string, size int64) {
	var sf segmentFile = f
	if l.opts.wrapFile != nil {
		sf = l.opts.wrapFile(sf)
	}
	l.w.f, l.w.segName, l.w.segSize = sf, name, size
}

// syncDir fsyncs a directory so that entries created in it are durable.
func (l *Log) syncDir(dir string) error {
	if l.opts.NoSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: sync dir %s: %w", dir, err)
	}
	return nil
}
