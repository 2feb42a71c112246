package audit

// Err reports why the log cannot take records: nil while it is writable, an
// error wrapping ErrFailed after a write or fsync failed, or ErrClosed after
// Close. Readiness checks use it; Append reports the same errors.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.failed != nil:
		return l.failed
	case l.closed:
		return ErrClosed
	}
	return nil
}

// Stats are counters for monitoring.
type Stats struct {
	Records uint64 // records durably written
	Syncs   uint64 // fsyncs of segment files; Records/Syncs is the mean group-commit size
	Staged  uint64 // records given a seq; Staged-Records are staged or written, not yet durable
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	return Stats{Records: l.size.Load(), Syncs: l.syncs.Load(), Staged: l.staged.Load()}
}
