package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/mod/sumdb/note"
)

// checkpointsFile is the checkpoint log: every checkpoint the gateway
// signed, oldest first, each a complete signed note (body, blank line,
// signature lines) written with one write and fsync'd. Notes follow each
// other directly: a note ends at its last "— " signature line, because an
// origin (a key name) never contains a space.
const checkpointsFile = "checkpoints"

// sigPrefix starts every signature line of a signed note.
var sigPrefix = []byte("— ")

// CheckpointError names a stored checkpoint that failed verification.
type CheckpointError struct {
	Index  int   // 0-based position in dir/checkpoints
	Offset int64 // byte offset of the note
	Reason string
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("audit: %s: checkpoint %d at byte %d: %s", checkpointsFile, e.Index, e.Offset, e.Reason)
}

// storedCheckpoint is one note of the checkpoint log.
type storedCheckpoint struct {
	msg    []byte
	offset int64
}

// splitCheckpoints splits the checkpoint log into notes. bad is the offset
// of the first note that is not complete (a torn write at the end, or
// damage), or -1.
func splitCheckpoints(b []byte) (notes []storedCheckpoint, bad int64) {
	start, off := 0, 0
	body, sigs := 0, 0 // body lines; signature lines (-1: blank line seen)
	for off < len(b) {
		nl := bytes.IndexByte(b[off:], '\n')
		if nl < 0 {
			break
		}
		line := b[off : off+nl]
		isSig := bytes.HasPrefix(line, sigPrefix)
		if sigs > 0 && !isSig {
			notes = append(notes, storedCheckpoint{msg: b[start:off], offset: int64(start)})
			start, body, sigs = off, 0, 0
		}
		switch {
		case sigs == 0 && len(line) > 0:
			body++
		case sigs == 0 && body > 0:
			sigs = -1
		case sigs != 0 && isSig:
			sigs = max(sigs, 0) + 1
		default:
			return notes, int64(start)
		}
		off += nl + 1
	}
	if off == len(b) && sigs > 0 {
		return append(notes, storedCheckpoint{msg: b[start:], offset: int64(start)}), -1
	}
	if start == len(b) {
		return notes, -1
	}
	return notes, int64(start)
}

// ReadCheckpoints returns the signed checkpoints stored in dir, oldest
// first, without verifying them. A missing checkpoint log is empty; an
// incomplete note at its end is an error.
func ReadCheckpoints(dir string) ([][]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	notes, torn := splitCheckpoints(b)
	if torn >= 0 {
		return nil, &CheckpointError{Index: len(notes), Offset: torn, Reason: "incomplete note (torn tail of the checkpoint log)"}
	}
	out := make([][]byte, len(notes))
	for i, n := range notes {
		out[i] = n.msg
	}
	return out, nil
}

// ckptLog is the writer's side of dir/checkpoints.
type ckptLog struct {
	mu     sync.Mutex
	f      *os.File
	latest []byte
	size   uint64 // tree size of latest
}

// openCheckpoints opens dir/checkpoints for appending. An incomplete note at
// its end (a crash while signing) is cut: it was never served to anyone.
// Damage anywhere else makes Open fail with ErrCorrupt.
func (l *Log) openCheckpoints() error {
	path := filepath.Join(l.dir, checkpointsFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open checkpoints: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: open checkpoints: %w", err)
	}
	notes, torn := splitCheckpoints(b)
	if rest := b[max(torn, 0):]; torn >= 0 && (len(rest) > maxCheckpointBytes || bytes.Count(rest, []byte("\n\n")) > 1) {
		f.Close()
		return &corruptError{&VerifyError{Segment: checkpointsFile, Seq: -1, Offset: torn, Reason: "damaged checkpoint followed by more data"}}
	}
	if torn >= 0 {
		l.log.WithField("offset", torn).WithField("cut_bytes", int64(len(b))-torn).Warn("audit: incomplete checkpoint at the end of the checkpoint log cut")
		err := f.Truncate(torn)
		if err == nil && !l.opts.NoSync {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("audit: open checkpoints: cut torn note: %w", err)
		}
	}
	l.ckpt = &ckptLog{f: f}
	if len(notes) > 0 {
		last := notes[len(notes)-1].msg
		l.ckpt.latest = bytes.Clone(last)
		if body, ok := splitNote(last); ok {
			if c, err := ParseCheckpoint(body); err == nil {
				l.ckpt.size = c.Size
			}
		}
	}
	return nil
}

// SignCheckpoint signs a checkpoint of the log as it is durable now, appends
// it to the checkpoint log (dir/checkpoints, fsync'd before it returns) and
// returns the signed note. When the log has not grown since the last stored
// checkpoint it returns that one and stores nothing, so an idle gateway does
// not fill the checkpoint log.
func (l *Log) SignCheckpoint(s note.Signer) ([]byte, error) {
	c := l.ckpt
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil, ErrClosed
	}
	n := l.Size()
	if c.latest != nil && c.size == n {
		if body, ok := splitNote(c.latest); ok {
			if old, err := ParseCheckpoint(body); err == nil && old.Origin == s.Name() {
				return c.latest, nil
			}
		}
	}
	cp, err := l.checkpointAt(n, s.Name())
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: cp.Text()}, s)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	if _, err := c.f.Write(msg); err != nil {
		return nil, fmt.Errorf("audit: store checkpoint: %w", err)
	}
	if !l.opts.NoSync {
		if err := c.f.Sync(); err != nil {
			return nil, fmt.Errorf("audit: store checkpoint: %w", err)
		}
	}
	c.latest, c.size = msg, n
	return msg, nil
}

// LatestCheckpoint returns the newest stored signed checkpoint, or nil when
// none was signed yet.
func (l *Log) LatestCheckpoint() []byte {
	c := l.ckpt
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest
}

func (c *ckptLog) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
