package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// writer is the state owned by the writer goroutine: the open segment, the
// chain head and the group being committed.
type writer struct {
	f       segmentFile
	segName string
	segSize int64
	segTime time.Time // time of the current segment's first record
	seq     uint64    // seq of the next record to stage
	prev    Hash      // hash of the last staged record line (zero before the first)
	buf     []byte    // staged lines of group, not yet written
	group   []*entry  // claimed entries whose lines are staged or written, not yet acknowledged
	tree    *tree
}

// run is the writer goroutine. It commits records in groups: it claims the
// queued entries and stages them (line, chain hash, tree hashes into w.buf),
// then writes the group with one write and one fsync and wakes its callers.
// A group holds at most MaxBatch records.
func (l *Log) run() {
	defer close(l.done)
	var taken []*entry
	last, lastSync := 0, time.Duration(0) // records and commit time of the previous round
	for {
		l.mu.Lock()
		for len(l.pending) == 0 && !l.closed {
			l.cond.Wait()
		}
		if len(l.pending) == 0 {
			l.mu.Unlock()
			return
		}
		// Gathering: the callers of the previous round were woken when its
		// fsync returned and are queueing their next records now; writing
		// as soon as the first of them arrives would split them over two
		// fsyncs, so the writer stages what is there, then waits (one
		// wake-up) until as many as last time are in, or for a quarter of
		// the last commit's write+fsync time (at most MaxLinger), whichever
		// comes first. A lone caller never waits: last is 1. Waking for
		// every few arrivals instead was measured: it costs more CPU than
		// the overlap saves on two cores, and makes groups smaller.
		target := min(last, l.opts.MaxBatch)
		wait := min(lastSync/4, l.opts.MaxLinger)
		var timer *time.Timer
		l.lingerN++
		gen := l.lingerN
		if wait > 0 && len(l.pending) < target {
			timer = time.AfterFunc(wait, func() {
				l.mu.Lock()
				l.lingerT = gen
				l.cond.Signal()
				l.mu.Unlock()
			})
		}
		n := 0
		for {
			taken, l.pending = l.pending, taken[:0]
			failed := l.failed
			l.mu.Unlock()
			n += len(taken)
			l.stageAll(taken, failed)
			clear(taken)
			taken = taken[:0]
			l.mu.Lock()
			if timer == nil || n >= target || l.closed || l.failed != nil || l.lingerT == gen {
				break
			}
			l.want = target - n
			for len(l.pending) < l.want && l.lingerT != gen && !l.closed {
				l.cond.Wait()
			}
			l.want = 1
			if len(l.pending) == 0 {
				break
			}
		}
		l.mu.Unlock()
		if timer != nil {
			timer.Stop()
		}
		t0 := time.Now()
		_ = l.finish()
		last, lastSync = n, time.Since(t0)
	}
}

// stageAll stages each entry of taken that its caller has not withdrawn,
// committing the group whenever it reaches MaxBatch. Once the log has
// failed, it fails the entries instead.
func (l *Log) stageAll(taken []*entry, failed error) {
	for _, e := range taken {
		if !e.state.CompareAndSwap(entryQueued, entryClaimed) {
			continue // withdrawn by a cancelled caller: no seq is used
		}
		if failed != nil {
			e.finish(0, failed)
			continue
		}
		l.w.group = append(l.w.group, e)
		if failed = l.stage(e); failed != nil {
			continue
		}
		if len(l.w.group) >= l.opts.MaxBatch {
			failed = l.finish()
		}
	}
}

// stage appends e's line to the group: seq, time and prev, then its event;
// hashes it into the chain and the tree. e is already in w.group. When the
// line would overflow the segment (size or age), the group so far is
// committed, the segment finished and the next one started with this line.
func (l *Log) stage(e *entry) error {
	w := &l.w
	start := len(w.buf)
	now := l.opts.Clock()
	w.buf = appendLine(w.buf, w.seq, now, &w.prev, e.body)
	tooBig := w.segSize+int64(len(w.buf))+1 > l.opts.SegmentMaxBytes
	tooOld := l.opts.SegmentMaxAge > 0 && now.Sub(w.segTime) >= l.opts.SegmentMaxAge
	if (tooBig || tooOld) && w.segSize+int64(start) > 0 {
		// The line does not fit: finish this segment, then start the next
		// one with this line. The chain runs across segments.
		line := w.buf[start:]
		w.buf, w.group = w.buf[:start], w.group[:len(w.group)-1]
		if err := l.finish(); err != nil {
			e.finish(0, err)
			return err
		}
		w.buf, w.group = append(w.buf, line...), append(w.group, e) // line is in w.buf's spare capacity: copy moves it down
		err := l.syncTree()
		if err == nil {
			err = l.rotate(w.seq)
		}
		if err != nil {
			return l.fail(err)
		}
		start = 0
	}
	if w.segSize+int64(start) == 0 {
		w.segTime = now
	}
	line := w.buf[start:]
	if err := w.tree.add(line, w.segSize+int64(start)); err != nil {
		return l.fail(fmt.Errorf("%w: %w", ErrFailed, err))
	}
	w.prev = HashLine(line)
	w.buf = append(w.buf, '\n')
	e.seq = w.seq
	w.seq++
	return nil
}

// finish commits the group: one write, one fsync, then the stored hashes
// and index entries, and only then the callers are woken.
func (l *Log) finish() error {
	w := &l.w
	if len(w.group) == 0 && len(w.buf) == 0 {
		return nil
	}
	err := l.flush(w.buf)
	if err == nil {
		if terr := w.tree.flush(); terr != nil {
			err = fmt.Errorf("%w: %w", ErrFailed, terr)
		}
	}
	if err != nil {
		return l.fail(err)
	}
	w.buf = w.buf[:0]
	l.size.Store(w.seq)
	for _, e := range w.group {
		e.finish(e.seq, nil)
	}
	clear(w.group)
	w.group = w.group[:0]
	return nil
}

// fail marks the log failed with err and fails every entry of the group.
func (l *Log) fail(err error) error {
	w := &l.w
	l.mu.Lock()
	l.failed = err
	l.mu.Unlock()
	l.log.WithError(err).Error("audit: log failed; refusing further records")
	for _, e := range w.group {
		e.finish(0, err)
	}
	clear(w.group)
	w.group = w.group[:0]
	w.buf = w.buf[:0]
	return err
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
		t0 := time.Now()
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("%w: fsync %s: %w", ErrFailed, w.segName, err)
		}
		l.syncT.Add(int64(time.Since(t0)))
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
