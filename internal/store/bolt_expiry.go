package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Expiry on bbolt: every record that expires has an entry in the
// "expiries" bucket, keyed by when it is due (unix ns, big-endian, so the
// bucket is in due order), then the record's bucket and key:
//
//	due(8) bucket 0x00 key → empty
//
// Sweep walks the bucket from the start up to now and deletes what is due:
// one transaction, touching only expired records. Before deleting a
// revocation, an approval or a budget counter it reads the record again, in
// case it was written since with a later due time (its entry then comes
// later).

var bucketExpiries = []byte("expiries")

// expireAt indexes bucket/key as due at t.
func expireAt(tx *bolt.Tx, t time.Time, bucket, key []byte) error {
	k := make([]byte, 8, 8+len(bucket)+1+len(key))
	binary.BigEndian.PutUint64(k, uint64(max(t.UnixNano(), 0)))
	k = append(k, bucket...)
	k = append(k, 0)
	k = append(k, key...)
	return tx.Bucket(bucketExpiries).Put(k, nil)
}

// grantDue is when a revocation of grant id may go: the grant's expiry
// plus retention, or, for a grant the store has no record of, now plus
// MaxGrantTTL plus retention.
func (b *Bolt) grantDue(tx *bolt.Tx, id string, now time.Time) time.Time {
	var g GrantRecord
	if v := tx.Bucket(bucketGrants).Get([]byte(id)); v != nil && json.Unmarshal(v, &g) == nil && !g.Expiry.IsZero() {
		return g.Expiry.Add(b.opts.Retention)
	}
	return now.Add(b.opts.MaxGrantTTL + b.opts.Retention)
}

// Sweep deletes every record past its expiry plus retention and returns
// how many it deleted. A Bolt sweeps every SweepInterval by itself.
func (b *Bolt) Sweep(ctx context.Context) (int, error) {
	now := b.clock()
	var n int
	var gone [][2]string // revocations deleted: bucket, key
	err := b.update(ctx, func(tx *bolt.Tx) error {
		n, gone = 0, gone[:0]
		idx := tx.Bucket(bucketExpiries)
		c := idx.Cursor()
		var done [][]byte
		for k, _ := c.First(); len(k) > 8; k, _ = c.Next() {
			if int64(binary.BigEndian.Uint64(k[:8])) > now.UnixNano() {
				break
			}
			done = append(done, bytes.Clone(k))
			name, key, ok := bytes.Cut(k[8:], []byte{0})
			if !ok {
				continue
			}
			bk := tx.Bucket(name)
			if bk == nil {
				continue
			}
			v := bk.Get(key)
			if v == nil || !b.recordDue(name, v, now) {
				continue
			}
			if err := bk.Delete(key); err != nil {
				return err
			}
			n++
			if bytes.Equal(name, bucketRevGrant) || bytes.Equal(name, bucketRevTask) {
				gone = append(gone, [2]string{string(name), string(key)})
			}
		}
		for _, k := range done {
			if err := idx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: sweep: %w", err)
	}
	b.mu.Lock()
	for _, g := range gone {
		if g[0] == string(bucketRevGrant) {
			delete(b.revokedID, g[1])
		} else {
			delete(b.revokedTask, g[1])
		}
	}
	b.mu.Unlock()
	return n, nil
}

// recordDue reports whether a record is due by its own content (records
// without an expiry, written before expiry existed, are kept).
func (b *Bolt) recordDue(bucket, v []byte, now time.Time) bool {
	var due time.Time
	switch {
	case bytes.Equal(bucket, bucketRevGrant), bytes.Equal(bucket, bucketRevTask):
		var r revocation
		if json.Unmarshal(v, &r) != nil {
			return false
		}
		due = r.Expires
	case bytes.Equal(bucket, bucketApprovals):
		var a ApprovalRecord
		if json.Unmarshal(v, &a) != nil || a.ExpiresAt.IsZero() {
			return false
		}
		due = a.ExpiresAt.Add(b.opts.Retention)
	case bytes.Equal(bucket, bucketGrants):
		var g GrantRecord
		if json.Unmarshal(v, &g) != nil || g.Expiry.IsZero() {
			return false
		}
		due = g.Expiry.Add(b.opts.Retention)
	case bytes.Equal(bucket, bucketBudgets):
		if len(v) < 16 {
			return false
		}
		due = time.Unix(0, int64(binary.BigEndian.Uint64(v[8:])))
	default: // parent links: due when indexed
		return true
	}
	return !due.IsZero() && !due.After(now)
}

// sweepLoop sweeps every SweepInterval until Close.
func (b *Bolt) sweepLoop(every time.Duration) {
	defer close(b.sweepDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stopSweep:
			return
		case <-t.C:
		}
		if _, err := b.Sweep(context.Background()); err != nil && b.opts.Logger != nil {
			b.opts.Logger.WithError(err).Warn("expired records not swept; trying again later")
		}
	}
}
