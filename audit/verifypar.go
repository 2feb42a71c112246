package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// Verify's pipeline: one goroutine reads the segments in large chunks and
// splits them into lines; workers parse every line's header and compute its
// chain and leaf hashes in parallel; Verify's own goroutine then takes the
// chunks in order and does what must be sequential (seq, prev, the tree's
// interior nodes, stored hashes, checkpoints), so the first bad record is
// named exactly as a one-pass verifier would name it.

// verifyChunkBytes is how much of a segment one read (and one chunk) takes.
// Tests make it smaller.
var verifyChunkBytes = 512 << 10

// chunkPool keeps chunks, with their grown buffers and line tables, from
// one Verify to the next.
var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

// lineInfo is one line of a chunk and what a worker found about it.
type lineInfo struct {
	start, end int   // line bytes are chunk.data[start:end], newline excluded
	off        int64 // offset of the line in its segment
	h          header
	err        error // parseHeader's refusal
	chain      Hash  // SHA-256(line)
	leaf       tlog.Hash
}

// chunk is a run of whole lines of one segment, followed, when the reader
// stopped there, by the reason (stop).
type chunk struct {
	seg       int // index into the segment list
	first     bool
	last      bool   // the segment's final chunk
	firstLine int    // 1-based line number of lines[0] in the segment
	data      []byte // the chunk's bytes; its capacity is kept when recycled
	lines     []lineInfo
	stop      *chunkStop
	done      chan struct{} // closed once the workers hashed every line
}

// chunkStop is why the reader stopped inside a segment.
type chunkStop struct {
	line   int // 1-based line number of the offending line
	off    int64
	reason string // for a VerifyError naming the line
	err    error  // or a plain error (open or read failure)
}

// verifyPipeline runs the reader and the workers over segs and returns the
// chunks in order. stop ends it early; wait returns once every goroutine
// has exited.
type verifyPipeline struct {
	out  chan *chunk
	stop chan struct{}
	wg   sync.WaitGroup
	free chan *chunk // recycled chunks: also bounds the chunks in flight
}

func startVerifyPipeline(segs []segment) *verifyPipeline {
	workers := max(1, runtime.GOMAXPROCS(0))
	p := &verifyPipeline{
		out:  make(chan *chunk, 2*workers+2),
		stop: make(chan struct{}),
		free: make(chan *chunk, 2*workers+2),
	}
	for range cap(p.free) {
		p.free <- chunkPool.Get().(*chunk)
	}
	work := make(chan *chunk, cap(p.out))
	for range workers {
		p.wg.Go(func() { hashChunks(work) })
	}
	p.wg.Go(func() {
		defer close(work)
		defer close(p.out)
		for i, s := range segs {
			if !p.readSegment(i, s, i == len(segs)-1, work) {
				return
			}
		}
	})
	return p
}

// close stops the pipeline, waits for its goroutines and returns the
// chunks to chunkPool.
func (p *verifyPipeline) close() {
	close(p.stop)
	for c := range p.out { // unblock the reader
		<-c.done
		p.release(c)
	}
	p.wg.Wait()
	for {
		select {
		case c := <-p.free:
			chunkPool.Put(c)
		default:
			return
		}
	}
}

// release recycles a chunk once Verify is done with it.
func (p *verifyPipeline) release(c *chunk) {
	c.data, c.lines = c.data[:0], c.lines[:0]
	c.stop, c.done = nil, nil
	p.free <- c
}

// sendStop sends a chunk that holds only a stop.
func (p *verifyPipeline) sendStop(seg int, first bool, stop *chunkStop, work chan<- *chunk) {
	var c *chunk
	select {
	case c = <-p.free:
	case <-p.stop:
		return
	}
	c.seg, c.first, c.last, c.stop = seg, first, true, stop
	p.send(c, work)
}

// send hands c to the workers and to Verify; false when stopped.
func (p *verifyPipeline) send(c *chunk, work chan<- *chunk) bool {
	c.done = make(chan struct{})
	if len(c.lines) == 0 {
		close(c.done)
	} else {
		select {
		case work <- c:
		case <-p.stop:
			return false
		}
	}
	select {
	case p.out <- c:
		return true
	case <-p.stop:
		return false
	}
}

// readSegment splits segment i into chunks of whole lines, with the same
// rules as lineScanner: a line longer than MaxLineBytes, or an unterminated
// last line, ends the segment with a stop. It returns false when the
// pipeline was stopped or the log cannot be read further.
func (p *verifyPipeline) readSegment(i int, s segment, newest bool, work chan<- *chunk) bool {
	f, err := os.Open(s.path)
	if err != nil {
		p.sendStop(i, true, &chunkStop{err: fmt.Errorf("audit: verify: %w", err)}, work)
		return false
	}
	defer f.Close()
	size, fileSize, err := logicalSize(f)
	if err != nil {
		p.sendStop(i, true, &chunkStop{err: fmt.Errorf("audit: verify: read %s: %w", s.name, err)}, work)
		return false
	}
	if !newest && fileSize > size {
		// Rotation cuts a segment's padding before the next one starts.
		p.sendStop(i, true, &chunkStop{off: size, reason: fmt.Sprintf("%d bytes of NUL padding after the last record of a segment that is not the newest", fileSize-size)}, work)
		return false
	}
	r := io.NewSectionReader(f, 0, size)
	var (
		carry   []byte // the unfinished line at the end of the previous chunk
		off     int64  // segment offset of carry[0]
		pos     int64  // bytes read so far
		line    = 1    // line number of the next line
		first   = true
		scratch []byte
	)
	for {
		var c *chunk
		select {
		case c = <-p.free:
		case <-p.stop:
			return false
		}
		// Read a chunk, or the rest of the file and one byte more, so that
		// a small segment takes one read and a small buffer.
		want := verifyChunkBytes
		if size >= 0 && size-pos+1 < int64(want) {
			want = int(max(size-pos+1, 512))
		}
		buf := slices.Grow(append(c.data[:0], carry...), want)
		n, rerr := io.ReadFull(r, buf[len(buf):len(buf)+want])
		buf = buf[:len(buf)+n]
		pos += int64(n)
		eof := errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF)
		c.seg, c.first, c.firstLine, c.data = i, first, line, buf
		if rerr != nil && !eof {
			c.stop, c.last = &chunkStop{err: fmt.Errorf("audit: verify: read %s: %w", s.name, rerr)}, true
			p.send(c, work)
			return false
		}
		first = false
		start := 0
		for start < len(buf) {
			nl := bytes.IndexByte(buf[start:], '\n')
			if nl < 0 {
				break
			}
			if nl > MaxLineBytes {
				c.stop = &chunkStop{line: line, off: off + int64(start), reason: fmt.Sprintf("line is longer than %d bytes", MaxLineBytes)}
				break
			}
			c.lines = append(c.lines, lineInfo{start: start, end: start + nl, off: off + int64(start)})
			start += nl + 1
			line++
		}
		rest := buf[start:]
		switch {
		case c.stop != nil:
		case len(rest) > MaxLineBytes+1:
			c.stop = &chunkStop{line: line, off: off + int64(start), reason: fmt.Sprintf("line is longer than %d bytes", MaxLineBytes)}
		case eof && len(rest) > 0:
			c.stop = &chunkStop{line: line, off: off + int64(start), reason: fmt.Sprintf("torn tail: last line is not terminated by a newline (%d bytes)", len(rest))}
		}
		stopped := c.stop != nil
		c.last = eof || stopped
		// The carried bytes must outlive this chunk's buffer.
		carry = append(scratch[:0], rest...)
		scratch = carry
		off += int64(start)
		// c belongs to Verify once sent: read nothing of it after this.
		if !p.send(c, work) || stopped {
			return false
		}
		if eof {
			return true
		}
	}
}

// hashChunks is a worker: it parses and hashes every line of each chunk.
func hashChunks(work <-chan *chunk) {
	leafH := sha256.New()
	var zero [1]byte
	for c := range work {
		hashLines(c, leafH, zero[:])
		close(c.done)
	}
}

func hashLines(c *chunk, leafH hash.Hash, zero []byte) {
	for i := range c.lines {
		li := &c.lines[i]
		line := c.data[li.start:li.end]
		if li.h, li.err = parseHeader(line); li.err != nil {
			return // Verify stops here; the lines after it do not matter
		}
		li.chain = sha256.Sum256(line)
		leafH.Reset()
		leafH.Write(zero)
		leafH.Write(line)
		leafH.Sum(li.leaf[:0])
	}
}

// chunk checks one chunk's lines in order, advancing the state, and
// returns how many records it held.
func (st *verifyState) chunk(s segment, c *chunk) (int, error) {
	<-c.done
	n := 0
	for i := range c.lines {
		li := &c.lines[i]
		lineNo := c.firstLine + i
		bad := func(seq int64, format string, args ...any) error {
			return &VerifyError{Segment: s.name, Line: lineNo, Seq: seq, Offset: li.off, Reason: fmt.Sprintf(format, args...)}
		}
		if li.err != nil {
			return n, bad(claimedSeq(c.data[li.start:li.end]), "%v", li.err)
		}
		h := &li.h
		if h.seq != st.seq {
			return n, bad(int64(h.seq), "seq mismatch: want %d, got %d", st.seq, h.seq)
		}
		if h.prev != st.prev {
			return n, bad(int64(h.seq), "prev mismatch: want %s, got %s", st.prev, h.prev)
		}
		hs := st.tree.addLeaf(li.leaf)
		if st.hashes != nil {
			for i, want := range hs {
				if _, err := io.ReadFull(st.hashes, st.buf[:]); err != nil {
					st.hashes = nil // the file stops here: a log not yet reopened after a crash
					break
				}
				if st.buf != want {
					return n, bad(int64(h.seq), "stored hash %d (dir/%s) differs from the recomputed tree", tlog.StoredHashCount(int64(h.seq))+int64(i), hashesFile)
				}
			}
			if st.hashes != nil {
				st.stored++
			}
		}
		if msg := st.checkIndex(h.seq, li.off); msg != "" {
			return n, bad(int64(h.seq), "%s", msg)
		}
		st.prev = li.chain
		st.seq++
		n++
		if len(st.targets) > 0 && st.seq == st.targets[0].c.Size {
			if err := st.checkRoots(s.name, lineNo, li.off); err != nil {
				return n, err
			}
		}
	}
	if c.stop != nil {
		if c.stop.err != nil {
			return n, c.stop.err
		}
		return n, &VerifyError{Segment: s.name, Line: c.stop.line, Seq: -1, Offset: c.stop.off, Reason: c.stop.reason}
	}
	return n, nil
}

// claimedSeq is the seq a line that failed to parse says it has, for the
// error naming it, or -1 when not even its `{"seq":N,` prefix is readable.
func claimedSeq(line []byte) int64 {
	rest, ok := bytes.CutPrefix(line, []byte(seqKey))
	if !ok {
		return -1
	}
	n := 0
	for n < len(rest) && n < 20 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n == len(rest) || rest[n] != ',' || (n > 1 && rest[0] == '0') {
		return -1
	}
	seq, err := strconv.ParseInt(string(rest[:n]), 10, 64)
	if err != nil {
		return -1
	}
	return seq
}
