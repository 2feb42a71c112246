// Package audit is Portcullis's evidence log: an append-only, hash-chained,
// group-committed log of JSON records in a directory of segment files, and
// the offline verifier an auditor runs against it.
//
// # Writing
//
// Open a log directory (created 0700 if missing) and append events. Append
// returns the record's sequence number only once the record is written and
// fsync'd, so a caller may act on the decision it records:
//
//	log, err := audit.Open("/var/lib/portcullis/audit", audit.Options{Logger: logger})
//	if err != nil { ... }
//	defer log.Close()
//
//	seq, err := log.Append(ctx, &audit.Event{
//		Type:      "decision",
//		RequestID: id,
//		Action:    "llm.invoke",
//		Principal: &audit.Principal{SPIFFEID: "spiffe://example.org/tenant/acme/agent/triage", ...},
//		Decision:  &audit.Decision{Allow: true, Revision: rev},
//	})
//	if err != nil {
//		// errors.Is(err, audit.ErrFailed): the disk failed; answer 503, forward nothing.
//	}
//
// Concurrent Appends share writes and fsyncs: one writer goroutine drains
// the queue, gives each record the next seq, the time and the hash of the
// previous record, and writes up to Options.MaxBatch records with one
// write; a syncer goroutine fsyncs that group and then wakes its callers.
// One fsync is in flight at a time, and while it runs the writer stages the
// records that arrive, so under load fsyncs run back to back, each shared
// by every record that came in during the last. When the syncer is free the
// writer waits briefly (at most Options.MaxLinger) for the callers of the
// group just acknowledged to queue their next records, so steady concurrent
// load shares each fsync instead of alternating halves.
// A caller with several records at once (the tool calls of one answer, an
// importer) appends them together; they get consecutive seqs and share
// fsyncs:
//
//	first, err := log.AppendBatch(ctx, events) // durable when it returns
//
// One goroutine that produces records one at a time keeps many in flight
// with AppendAsync and waits for each one's durability later:
//
//	p, err := log.AppendAsync(ev)
//	...
//	seq, err := p.Wait(ctx) // acknowledged only now
//
// Events are encoded in the caller's goroutine, into pooled buffers, by a
// hand-written encoder that writes exactly the bytes encoding/json would
// (FuzzAppendEvent holds the two together); the writer only adds the three
// leading fields and hashes. An Append allocates nothing in steady state.
//
// The log fails closed. After a write or fsync error every Append returns an
// error wrapping ErrFailed until the process reopens the log; after Close,
// ErrClosed. A cancelled context withdraws a record that the writer has not
// taken yet, so no sequence number is skipped.
//
// # Records
//
// Each record is one line:
//
//	{"seq":1,"time":"2026-03-14T15:09:26.5365Z","prev":"bfbe9135…be20","type":"decision",...}
//
// seq counts from 0, time is RFC 3339 UTC, prev is the hex SHA-256 of the
// previous line's bytes without its newline (64 zeros for seq 0), and the
// event's fields follow in Event's field order. Because the hash is over the
// exact bytes, a verifier needs no canonical JSON. Segments are named by the
// seq of their first record (segments/00000000000000000000.log) and rotate at
// Options.SegmentMaxBytes; the chain runs across them. docs/audit-format.md
// is the byte-level specification.
//
// A segment is written over zeros: the next one is prepared in the
// background (segments/next.tmp, 1 MiB after Open, doubling up to
// SegmentMaxBytes), so a group's fdatasync commits no size change and no
// block allocation. The newest segment of an open or crashed log therefore
// ends in NUL padding, which every reader stops at; rotation and Close cut
// it.
//
// # Tree, checkpoints and proofs
//
// Every record is also a leaf of an RFC 6962 Merkle tree (sumdb/tlog; leaf
// hash SHA-256(0x00 || line)), whose stored hashes live in dir/hashes. A
// signed checkpoint commits to the tree; proofs show one record is in it, or
// that a newer tree extends an older one:
//
//	signer, vkey, err := audit.LoadKeyFile(path) // or GenerateKeyFile(path, origin)
//	msg, err := log.SignCheckpoint(signer)       // signed, appended to dir/checkpoints
//	msg = log.LatestCheckpoint()                 // what GET /v1/audit/checkpoint serves
//	proof, err := log.ProveSigned(seq, signer)   // record + inclusion proof + checkpoint
//	c, err := audit.CheckProof(proof, verifier)  // offline, without the log
//	tp, err := log.ProveConsistency(old.Size, c.Size)
//	err = audit.CheckConsistency(tp, old, c)
//	rep, err := audit.VerifyWithCheckpoint(dir, keptMsg, verifier) // catches truncation and forks
//
// dir/index maps seq to the record's offset in its segment, so finding a
// record takes two reads. A Reader serves records, tree hashes and proofs
// without taking the directory lock, beside a running gateway:
//
//	r, err := audit.OpenReader(dir)
//	line, err := r.Record(seq)
//	proof, err := r.Prove(seq, checkpoint.Size)
//
// # Crashes
//
// Open scans the last segment. A torn tail (bytes after the last newline,
// trailing lines that do not parse, or a line holding a NUL — a page of an
// unacknowledged group that never reached the disk) is copied to torn/,
// cut off (zeroed in a preallocated segment), and recorded
// by a "recovery" record giving the offset, byte count and SHA-256 of what was
// cut. Anything else that does not chain makes Open fail with ErrCorrupt: the
// log is never rewritten behind the auditor's back.
//
// Open reads the latest stored checkpoint first. A record below its size was
// acknowledged and signed for: a bad line there is ErrCorrupt, never a torn
// tail, and a recovered log that is shorter than the checkpoint, or whose
// tree at its size has another root, is ErrCorrupt too, so the key never
// signs a fork. With Options.Verifier set (the verifier of the signing key),
// a latest checkpoint that does not verify is ErrKeyMismatch:
//
//	log, err := audit.Open(dir, audit.Options{Verifier: verifier})
//	switch {
//	case errors.Is(err, audit.ErrCorrupt):     // damaged, truncated or rewritten: investigate
//	case errors.Is(err, audit.ErrKeyMismatch): // the signing key was replaced
//	}
//
// # Verifying
//
// Verify reads a log directory without writing to it, checks every record,
// the chain, the stored tree hashes and the stored checkpoints, and names the
// first record (or checkpoint) that is out of place; VerifyWith also checks
// the stored checkpoints' signatures and a checkpoint the auditor kept:
//
//	rep, err := audit.Verify(dir)
//	var bad *audit.VerifyError
//	if errors.As(err, &bad) {
//		// bad.Segment, bad.Line, bad.Seq, bad.Reason
//	}
//	fmt.Println(rep.Records, rep.Head)
//
// Verify reads segments in large chunks and parses and hashes lines on every
// core; the chain, the tree and the checkpoints are then checked in order,
// so the error names the same first bad record a one-pass check would.
//
// A hash chain shows that nothing was changed, inserted, removed or reordered
// before the last record; it cannot show that records were cut from the end.
// Keep Report.Head (or a signed checkpoint) somewhere the gateway's operator
// cannot reach and compare it later, or better, keep signed checkpoints and
// use VerifyWithCheckpoint.
package audit
