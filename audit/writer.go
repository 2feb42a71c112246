package audit

import (
	"bytes"
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
	padded  bool      // the segment is a preallocated file, zeros from segSize to fileEnd
	fileEnd int64     // size of the preallocated file; 0 for one written by extending
	seq     uint64    // seq of the next record to stage
	prev    Hash      // hash of the last staged record line (zero before the first)
	buf     []byte    // staged lines of group, not yet written
	group   []*entry  // claimed entries whose lines are staged or written, not yet acknowledged
	tree    *tree
}

// run is the writer goroutine. It commits records in groups with at most
// one fsync in flight: while the syncer goroutine fsyncs one group, run
// claims the entries that arrive and stages them (line and chain hash into
// w.buf); as soon as the syncer is idle again, run writes the staged group
// with one write, hands it to the syncer, and adds the group to the Merkle
// tree while the fsync runs (commitAsync). Under load the disk is kept busy
// with back-to-back fsyncs, each shared by every record that arrived during
// the previous one, and the hashing overlaps the fsync; a lone caller waits
// for one write and one fsync. A group holds at most MaxBatch records: past that,
// run waits for the syncer.
//
// Before the syncer is handed a group, run may linger (see linger) for the
// callers of the group just made durable, who are queueing their next
// records, so that steady load does not split into a small group and a
// large one.
//
// Rotation needs every written record durable first: it waits for the
// syncer to be idle and commits synchronously (commitSync).
func (l *Log) run() {
	defer close(l.done)
	go l.syncer()
	defer func() {
		close(l.syncC)
		<-l.syncDone
	}()
	w := &l.w
	var taken []*entry
	for {
		l.mu.Lock()
		for {
			if len(l.pending) > 0 && len(w.group) < l.opts.MaxBatch {
				break // stage new arrivals, also while an fsync runs
			}
			if l.syncIdle && len(w.group) > 0 {
				break // commit what is staged
			}
			if l.closed && l.syncIdle && len(l.pending) == 0 && len(w.group) == 0 {
				l.mu.Unlock()
				return
			}
			l.cond.Wait()
		}
		if len(l.pending) > 0 && len(w.group) < l.opts.MaxBatch {
			n := min(len(l.pending), l.opts.MaxBatch-len(w.group))
			taken = append(taken[:0], l.pending[:n]...)
			rest := copy(l.pending, l.pending[n:])
			clear(l.pending[rest:])
			l.pending = l.pending[:rest]
			failed := l.failed
			l.mu.Unlock()
			l.stageAll(taken, failed)
			clear(taken)
			continue
		}
		if l.linger() {
			l.mu.Unlock()
			continue // more arrived: stage them first
		}
		l.syncIdle = false
		l.lingerEnd = time.Time{}
		failed := l.failed
		l.mu.Unlock()
		if failed != nil {
			l.failStaged(failed)
			l.setSyncIdle()
			continue
		}
		l.commitAsync()
	}
}

// linger is called with l.mu held, the syncer idle and a group staged. If
// the group is smaller than the last one the syncer acknowledged, it waits
// for as many arrivals as make up the difference, but for lingerChunk at
// most, or a quarter of the last fsync's time, whichever comes first; a
// group lingers MaxLinger at most in all, however its callers trickle in.
// It reports whether entries arrived to stage: run stages them and lingers
// again for the rest, so the staging overlaps the arrivals instead of
// following the last of them. A lone caller never waits: its last group
// was 1. Lingering was measured on two cores: without it, 64 steady
// writers settle into groups of a few and of the rest, and get fewer
// records per fsync.
func (l *Log) linger() bool {
	want := min(l.lastGroup, l.opts.MaxBatch) - len(l.w.group)
	if want <= 0 || l.closed || l.failed != nil {
		return false
	}
	want = min(want, lingerChunk)
	now := time.Now()
	if l.lingerEnd.IsZero() { // the group's first wait
		l.lingerEnd = now.Add(l.opts.MaxLinger)
	}
	wait := min(time.Duration(l.lastSync.Load())/4, l.lingerEnd.Sub(now))
	if wait <= 0 {
		return false
	}
	l.lingerN++
	gen := l.lingerN
	timer := time.AfterFunc(wait, func() {
		l.mu.Lock()
		l.lingerT = gen
		l.cond.Signal()
		l.mu.Unlock()
	})
	l.lingerWant = want
	for len(l.pending) < want && l.lingerT != gen && !l.closed && l.failed == nil {
		l.cond.Wait()
	}
	l.lingerWant = 0
	timer.Stop()
	return len(l.pending) > 0
}

// lingerChunk is how many arrivals a lingering writer waits for before it
// stages them. Waking it for each arrival would cost a context switch per
// record; waking it only for the whole group would stage the group's lines
// (about 1.3 µs each, serially) after its last caller arrived, while the
// disk idles. With 64 writers on two cores, chunks of 16 took the time
// from one fsync's end to the next one's start from ~290 to ~220 µs
// (docs/performance.md).
const lingerChunk = 16

// handshakeGroup is the group size from which commitAsync waits for the
// syncer to start the group's fsync before it hashes the group (see
// commitAsync); for a smaller group the hashing is shorter than the wait.
const handshakeGroup = 8

// commitAsync writes the staged group and hands it to the syncer, which the
// caller has marked busy; then, while the fsync runs, it adds the group to
// the Merkle tree and writes its stored hashes and index entries, and tells
// the syncer, which acknowledges the group only once both are done. So the
// tree's hashing costs the group no time unless it outlasts the fsync.
func (l *Log) commitAsync() {
	w := &l.w
	base := w.segSize
	if err := l.write(w.buf); err != nil {
		l.fail(err)
		l.setSyncIdle()
		return
	}
	req := syncReq{f: w.f, name: w.segName, group: w.group, size: w.seq, handshake: len(w.group) >= handshakeGroup}
	l.mu.Lock()
	w.group, l.spare = l.spare[:0], nil
	l.mu.Unlock()
	l.syncC <- req
	// The syncer is now runnable on this processor, but would run only once
	// this goroutine blocks, after hashing the group (~1 µs a record): the
	// other processor seldom steals it sooner. Waiting for its word lets it
	// enter the fsync first; the runtime then runs this goroutine on a free
	// processor, or hands it the syncer's while the fsync blocks. Measured
	// with 64 writers: the fsync started 25 µs after the commit decision
	// instead of 95, and the hashing still ended before the fsync did.
	if req.handshake {
		<-l.syncStarted
	}
	l.treeDone <- l.hashLines(w.buf, base)
	w.buf = w.buf[:0]
}

// hashLines adds the lines of b, written at byte base of the current
// segment, to the tree, and writes their stored hashes and index entries.
func (l *Log) hashLines(b []byte, base int64) error {
	t := l.w.tree
	for off := 0; off < len(b); {
		n := bytes.IndexByte(b[off:], '\n')
		if n < 0 {
			n = len(b) - off // not reached: every staged line ends in a newline
		}
		if err := t.add(b[off:off+n], base+int64(off)); err != nil {
			return fmt.Errorf("%w: %w", ErrFailed, err)
		}
		off += n + 1
	}
	if err := t.flush(); err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return nil
}

// syncReq is a written group for the syncer to make durable.
type syncReq struct {
	f     segmentFile
	name  string
	group []*entry
	size  uint64 // the log's size once the group is durable

	handshake bool // the syncer sends on syncStarted as it starts the fsync
}

// syncer fsyncs the groups commitAsync hands it, one at a time, then
// publishes the new size and wakes the group's callers. On an fsync error
// the log fails: the group's callers get the error, and so does every
// later Append.
func (l *Log) syncer() {
	defer close(l.syncDone)
	for req := range l.syncC {
		if req.handshake {
			l.syncStarted <- struct{}{}
		}
		err := l.sync(req.f, req.name)
		if terr := <-l.treeDone; err == nil {
			err = terr
		}
		if err != nil {
			l.setFailed(err)
			for _, e := range req.group {
				e.finish(0, err)
			}
		} else {
			l.size.Store(req.size)
			for _, e := range req.group {
				e.finish(e.seq, nil)
			}
		}
		clear(req.group)
		l.mu.Lock()
		l.lastGroup = len(req.group)
		l.spare = req.group[:0]
		l.syncIdle = true
		l.cond.Signal()
		l.mu.Unlock()
	}
}

// setSyncIdle marks the syncer idle after a group that never reached it.
func (l *Log) setSyncIdle() {
	l.mu.Lock()
	l.syncIdle = true
	l.mu.Unlock()
}

// waitSyncIdle waits until the syncer has made every handed-over group
// durable.
func (l *Log) waitSyncIdle() {
	l.mu.Lock()
	for !l.syncIdle {
		l.cond.Wait()
	}
	l.mu.Unlock()
}

// stageAll stages each entry of taken that its caller has not withdrawn.
// Once the log has failed, it fails the entries instead.
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
		failed = l.stage(e)
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
	if !w.padded {
		l.prep.start() // no-op while a file is ready or being prepared
	}
	switchNow := !w.padded && l.prep.isReady()
	if (tooBig || tooOld || switchNow) && w.segSize+int64(start) > 0 {
		// The line does not fit (or a preallocated segment is ready to
		// replace one that is not): finish this segment, then start the
		// next one with this line. The chain runs across segments.
		line := w.buf[start:]
		w.buf, w.group = w.buf[:start], w.group[:len(w.group)-1]
		l.waitSyncIdle()
		if err := l.commitSync(); err != nil {
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
		if switchNow {
			if err := l.adoptPrepared(); err != nil {
				return l.fail(err)
			}
		}
		w.segTime = now
	}
	line := w.buf[start:]
	w.prev = HashLine(line)
	w.buf = append(w.buf, '\n')
	e.seq = w.seq
	w.seq++
	l.staged.Store(w.seq)
	return nil
}

// commitSync commits the staged group synchronously: one write, one
// fsync, then the stored hashes and index entries, and only then the
// callers are woken. The syncer must be idle.
func (l *Log) commitSync() error {
	w := &l.w
	if len(w.group) == 0 && len(w.buf) == 0 {
		return nil
	}
	l.mu.Lock()
	failed := l.failed
	l.mu.Unlock()
	if failed != nil {
		return l.fail(failed)
	}
	base := w.segSize
	err := l.write(w.buf)
	if err == nil {
		err = l.sync(w.f, w.segName)
	}
	if err == nil {
		err = l.hashLines(w.buf, base)
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

// fail marks the log failed with err and fails the staged group.
func (l *Log) fail(err error) error {
	l.setFailed(err)
	l.failStaged(err)
	return err
}

// setFailed marks the log failed with err; the first failure is logged.
func (l *Log) setFailed(err error) {
	l.mu.Lock()
	first := l.failed == nil
	if first {
		l.failed = err
	}
	l.cond.Signal()
	l.mu.Unlock()
	if first {
		l.log.WithError(err).Error("audit: log failed; refusing further records")
	}
}

// failStaged fails every entry of the staged group with err.
func (l *Log) failStaged(err error) {
	w := &l.w
	for _, e := range w.group {
		e.finish(0, err)
	}
	clear(w.group)
	w.group = w.group[:0]
	w.buf = w.buf[:0]
}

// write writes b to the current segment. On a write error it tries to cut
// the segment back so no half record is left behind.
func (l *Log) write(b []byte) error {
	w := &l.w
	if len(b) == 0 {
		return nil
	}
	if _, err := w.f.WriteAt(b, w.segSize); err != nil {
		l.unwrite(w.segSize + int64(len(b)))
		return fmt.Errorf("%w: write %s: %w", ErrFailed, w.segName, err)
	}
	w.segSize += int64(len(b))
	if w.segSize >= w.fileEnd {
		w.padded = false // the prepared space ran out: the file grows from here
	}
	return nil
}

// unwrite tries to undo a failed write that may have reached up to byte
// end of the segment, so no half record is left behind: it cuts the file
// back, or zeros the bytes again in a preallocated one.
func (l *Log) unwrite(end int64) {
	w := &l.w
	if !w.padded {
		_ = w.f.Truncate(w.segSize)
		return
	}
	if end > w.fileEnd {
		_ = w.f.Truncate(w.fileEnd)
	}
	_ = writeZeros(w.f, w.segSize, min(end, w.fileEnd))
}

// sync fsyncs segment f, unless the log runs without fsync.
func (l *Log) sync(f segmentFile, name string) error {
	if l.opts.NoSync {
		return nil
	}
	t0 := time.Now()
	if err := syncData(f); err != nil {
		return fmt.Errorf("%w: fsync %s: %w", ErrFailed, name, err)
	}
	d := time.Since(t0)
	l.lastSync.Store(int64(d))
	l.syncT.Add(int64(d))
	l.syncs.Add(1)
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
// the segment whose first record is first. A preallocated segment is first
// cut to its records, so that only the newest segment ever has padding.
func (l *Log) rotate(first uint64) error {
	if l.w.padded {
		err := l.w.f.Truncate(l.w.segSize)
		if err == nil && !l.opts.NoSync {
			err = l.w.f.Sync()
		}
		if err != nil {
			return fmt.Errorf("%w: cut padding of %s: %w", ErrFailed, l.w.segName, err)
		}
	}
	if err := l.w.f.Close(); err != nil {
		return fmt.Errorf("%w: close %s: %w", ErrFailed, l.w.segName, err)
	}
	l.w.f = nil
	if err := l.createSegment(first); err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return nil
}

// createSegment creates the segment starting at first, from the prepared
// file if one is ready, else empty; makes its directory entry durable and
// makes it the current segment.
func (l *Log) createSegment(first uint64) error {
	name := segmentName(first)
	sdir := filepath.Join(l.dir, segmentsDir)
	path := filepath.Join(sdir, name)
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("audit: create segment: %s exists", name)
	}
	f, size, err := l.prep.take(path)
	if err == nil && f == nil {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return fmt.Errorf("audit: create segment: %w", err)
	}
	if err := l.syncDir(sdir); err != nil {
		f.Close()
		return err
	}
	l.setSegment(f, name, 0, size)
	l.prep.start()
	return nil
}

// adoptPrepared replaces the current segment, which holds no record yet,
// with the prepared file.
func (l *Log) adoptPrepared() error {
	w := &l.w
	sdir := filepath.Join(l.dir, segmentsDir)
	path := filepath.Join(sdir, w.segName)
	f, size, err := l.prep.take(path) // replaces the empty file
	if err == nil && f == nil {
		return nil
	}
	if err == nil {
		err = l.syncDir(sdir)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	_ = w.f.Close()
	l.setSegment(f, w.segName, 0, size)
	l.prep.start()
	return nil
}

// setSegment makes f the current segment: its records end at size, and a
// preallocated file's zeros run on to fileEnd (0: the file is extended).
func (l *Log) setSegment(f *os.File, name string, size, fileEnd int64) {
	var sf segmentFile = f
	if l.opts.wrapFile != nil {
		sf = l.opts.wrapFile(sf)
	}
	l.w.f, l.w.segName, l.w.segSize = sf, name, size
	l.w.fileEnd, l.w.padded = fileEnd, size < fileEnd
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
