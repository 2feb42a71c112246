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
	"golang.org/x/mod/sumdb/tlog"
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

// HasCheckpoints reports whether dir holds at least one complete stored
// checkpoint. It reads dir/checkpoints without locking the log: a gateway
// calls it before Open to tell a fresh log (where a missing signing key may
// be generated) from one whose key was lost.
func HasCheckpoints(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	notes, _ := splitCheckpoints(b)
	return len(notes) > 0, nil
}

// ckptLog is the writer's side of dir/checkpoints.
type ckptLog struct {
	mu     sync.Mutex
	f      *os.File
	latest []byte
	size   uint64    // tree size of latest
	root   tlog.Hash // tree root of latest
}

// openCheckpoints opens dir/checkpoints for appending and reads its latest
// note, before the segments are recovered: recovery never cuts a record
// that note covers. An incomplete note at its end (a crash while signing) is
// cut: it was never served to anyone. Damage anywhere else, or a latest
// note that is not a checkpoint, makes Open fail with ErrCorrupt; with
// Options.Verifier, a latest note that does not verify makes it fail with
// ErrKeyMismatch.
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
	if len(notes) == 0 {
		return nil
	}
	last := notes[len(notes)-1]
	bad := func(format string, args ...any) error {
		f.Close()
		l.ckpt.f = nil
		return &corruptError{&VerifyError{Segment: checkpointsFile, Seq: -1, Offset: last.offset, Reason: fmt.Sprintf(format, args...)}}
	}
	body, ok := splitNote(last.msg)
	if !ok {
		return bad("latest checkpoint is not a signed note")
	}
	c, err := ParseCheckpoint(body)
	if err != nil {
		return bad("latest checkpoint: %v", err)
	}
	if v := l.opts.Verifier; v != nil {
		if _, err := OpenCheckpoint(last.msg, v); err != nil {
			f.Close()
			l.ckpt.f = nil
			return &KeyError{Offset: last.offset, Size: c.Size, Key: v.Name(), Err: err}
		}
	}
	l.ckpt.latest, l.ckpt.size, l.ckpt.root = bytes.Clone(last.msg), c.Size, c.Root
	return nil
}

// KeyError is Open's refusal when Options.Verifier does not verify the
// latest stored checkpoint: the signing key was replaced (or the checkpoint
// log belongs to another log). It wraps ErrKeyMismatch.
type KeyError struct {
	Offset int64  // byte offset of the latest note in dir/checkpoints
	Size   uint64 // its tree size
	Key    string // the verifier's name
	Err    error  // why it did not verify
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("audit: %s: the latest checkpoint (size %d, at byte %d) does not verify with key %q: %v; "+
		"the signing key was replaced or lost: restore the key that signed it, or start a new log directory",
		checkpointsFile, e.Size, e.Offset, e.Key, e.Err)
}

func (e *KeyError) Unwrap() []error { return []error{ErrKeyMismatch, e.Err} }

// checkCheckpoint is Open's last check before the log is used: the
// recovered log must hold at least the records of the latest stored
// checkpoint, and its tree at that size must have the checkpoint's root.
// Otherwise records that were acknowledged and signed for are gone or
// rewritten, and signing on would put the key's name to a fork.
func (l *Log) checkCheckpoint() error {
	c := l.ckpt
	if c.latest == nil {
		return nil
	}
	n := l.Size()
	if n < c.size {
		return &corruptError{&VerifyError{Segment: checkpointsFile, Seq: int64(n), Offset: -1, Reason: fmt.Sprintf(
			"the log holds %d records but checkpoint %d was signed for %d: the log was truncated after checkpoint %d was signed; an operator must investigate (nothing was written)",
			n, c.size, c.size, c.size)}}
	}
	root, err := l.TreeHash(c.size)
	if err != nil {
		return fmt.Errorf("audit: open: tree hash at %d: %w", c.size, err)
	}
	if root != c.root {
		return &corruptError{&VerifyError{Segment: checkpointsFile, Seq: -1, Offset: -1, Reason: fmt.Sprintf(
			"tree hash at size %d is %s, checkpoint %d was signed for %s: the log was rewritten after checkpoint %d was signed; an operator must investigate (nothing was written)",
			c.size, root, c.size, c.root, c.size)}}
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
