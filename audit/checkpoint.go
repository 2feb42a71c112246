package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a C2SP tlog-checkpoint body: the log's origin, a tree size
// and the RFC 6962 root hash of the first Size records.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   tlog.Hash
}

// maxCheckpointBytes caps a signed checkpoint note.
const maxCheckpointBytes = 16 << 10

// Text returns the checkpoint body: "<origin>\n<size>\n<base64 root>\n".
func (c Checkpoint) Text() string {
	return c.Origin + "\n" + strconv.FormatUint(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// ParseCheckpoint parses a checkpoint body. Extension lines after the root
// are allowed and ignored, as C2SP tlog-checkpoint says.
func ParseCheckpoint(text string) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.SplitAfterN(text, "\n", 4)
	if len(lines) < 3 || !strings.HasSuffix(lines[2], "\n") {
		return c, errors.New("audit: checkpoint: want origin, size and root lines")
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	size := strings.TrimSuffix(lines[1], "\n")
	root := strings.TrimSuffix(lines[2], "\n")
	if origin == "" {
		return c, errors.New("audit: checkpoint: empty origin")
	}
	n, err := strconv.ParseUint(size, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != size {
		return c, fmt.Errorf("audit: checkpoint: bad size %q", size)
	}
	h, err := base64.StdEncoding.Strict().DecodeString(root)
	if err != nil || len(h) != HashSize {
		return c, fmt.Errorf("audit: checkpoint: bad root hash %q", root)
	}
	c.Origin, c.Size = origin, n
	copy(c.Root[:], h)
	return c, nil
}

// OpenCheckpoint verifies a signed checkpoint note with v and parses it. The
// checkpoint's origin must be the verifier's key name.
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, error) {
	if len(msg) > maxCheckpointBytes {
		return Checkpoint{}, errors.New("audit: checkpoint: too large")
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return c, err
	}
	if c.Origin != v.Name() {
		return c, fmt.Errorf("audit: checkpoint: origin %q is not the key name %q", c.Origin, v.Name())
	}
	return c, nil
}

// Checkpoint signs a checkpoint of the log as it is now durable: its size and
// tree root, with origin s.Name(). The result is a C2SP signed note.
func (l *Log) Checkpoint(s note.Signer) ([]byte, error) {
	c, err := l.checkpointAt(l.Size(), s.Name())
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: c.Text()}, s)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return msg, nil
}

// TreeHash returns the root of the tree of the first n records (n <= Size).
func (l *Log) TreeHash(n uint64) (tlog.Hash, error) {
	return l.rd.TreeHash(n)
}

func (l *Log) checkpointAt(n uint64, origin string) (Checkpoint, error) {
	root, err := l.TreeHash(n)
	return Checkpoint{Origin: origin, Size: n, Root: root}, err
}

// checkpointSeparator ends the text of a signed note; everything before it
// plus one newline is the body.
var checkpointSeparator = []byte("\n\n")

// splitNote returns the body of a signed note without verifying it.
func splitNote(msg []byte) (string, bool) {
	i := bytes.LastIndex(msg, checkpointSeparator)
	if i < 0 {
		return "", false
	}
	return string(msg[:i+1]), true
}
