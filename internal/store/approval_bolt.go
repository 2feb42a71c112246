package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// bucketApprovals holds approval id → ApprovalRecord JSON. It is created on
// first write; a file without it has no approvals.
var bucketApprovals = []byte("approvals")

var _ Approvals = (*Bolt)(nil)

// CreateApproval implements Approvals.
func (b *Bolt) CreateApproval(ctx context.Context, a ApprovalRecord) error {
	if a.ID == "" || !a.State.Valid() {
		return fmt.Errorf("store: create approval: needs an id and a valid state")
	}
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("store: create approval %s: %w", a.ID, err)
	}
	err = b.update(ctx, func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketApprovals)
		if err != nil {
			return err
		}
		if bk.Get([]byte(a.ID)) != nil {
			return ErrExists
		}
		if err := bk.Put([]byte(a.ID), v); err != nil {
			return err
		}
		if a.ExpiresAt.IsZero() {
			return nil
		}
		return expireAt(tx, a.ExpiresAt.Add(b.opts.Retention), bucketApprovals, []byte(a.ID))
	})
	if err != nil {
		return fmt.Errorf("store: create approval %s: %w", a.ID, err)
	}
	return nil
}

// Approval implements Approvals.
func (b *Bolt) Approval(ctx context.Context, id string) (ApprovalRecord, error) {
	var a ApprovalRecord
	err := b.viewApprovals(ctx, func(tx *bolt.Tx) error {
		var v []byte
		if bk := tx.Bucket(bucketApprovals); bk != nil {
			v = bk.Get([]byte(id))
		}
		if v == nil {
			return fmt.Errorf("%w: approval %s", ErrNotFound, id)
		}
		return json.Unmarshal(v, &a)
	})
	if err != nil {
		return ApprovalRecord{}, fmt.Errorf("store: %w", err)
	}
	return a, nil
}

// ListApprovals implements Approvals by scanning the bucket.
func (b *Bolt) ListApprovals(ctx context.Context, f ApprovalFilter) ([]ApprovalRecord, error) {
	var out []ApprovalRecord
	err := b.viewApprovals(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketApprovals)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			var a ApprovalRecord
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("approval %s: %w", k, err)
			}
			if f.Match(&a) {
				out = append(out, a)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list approvals: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// UpdateApproval implements Approvals in one bbolt transaction: bbolt has a
// single writer, so change runs once.
func (b *Bolt) UpdateApproval(ctx context.Context, id string, change func(*ApprovalRecord) error) (ApprovalRecord, error) {
	var a ApprovalRecord
	var cerr error
	err := b.update(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketApprovals)
		var v []byte
		if bk != nil {
			v = bk.Get([]byte(id))
		}
		if v == nil {
			return fmt.Errorf("%w: approval %s", ErrNotFound, id)
		}
		a = ApprovalRecord{}
		if err := json.Unmarshal(v, &a); err != nil {
			return err
		}
		cerr = change(&a)
		if a.ID != id {
			return fmt.Errorf("change may not alter the id of approval %s", id)
		}
		nv, err := json.Marshal(a)
		if err != nil {
			return err
		}
		if bytes.Equal(nv, v) {
			return nil
		}
		return bk.Put([]byte(id), nv)
	})
	if err != nil {
		return ApprovalRecord{}, fmt.Errorf("store: update approval %s: %w", id, err)
	}
	return a, cerr
}

func (b *Bolt) viewApprovals(ctx context.Context, f func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return b.db.View(f)
}
