package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Approvals live at approvals/<id> as ApprovalRecord JSON. A change is a
// compare-and-swap on the key's modification revision: two replicas using
// the same approval at once both read it approved, one transaction commits,
// and the other finds the record changed, reads it again (now used) and
// fails with ErrApprovalState.

var _ Approvals = (*Etcd)(nil)

// CreateApproval implements Approvals.
func (s *Etcd) CreateApproval(ctx context.Context, a ApprovalRecord) error {
	if a.ID == "" || !a.State.Valid() {
		return fmt.Errorf("store: create approval: needs an id and a valid state")
	}
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("store: create approval %s: %w", a.ID, err)
	}
	k := s.key("approvals", a.ID)
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	var resp *clientv3.TxnResponse
	for attempt := 0; ; attempt++ {
		var opts []clientv3.OpOption
		var lease clientv3.LeaseID
		if !a.ExpiresAt.IsZero() {
			// Deleted, whatever its state, retention after it expires.
			if lease, err = s.leases.forExpiry(rctx, a.ExpiresAt.Add(s.opts.Retention), s.clock()); err != nil {
				return err
			}
			opts = append(opts, clientv3.WithLease(lease))
		}
		resp, err = s.cli.Txn(rctx).If(clientv3.Compare(clientv3.Version(k), "=", 0)).Then(clientv3.OpPut(k, string(v), opts...)).Commit()
		if leaseLost(err) && attempt == 0 {
			s.leases.forget(lease)
			continue
		}
		if err != nil {
			return unavailable("create approval "+a.ID, err)
		}
		break
	}
	if !resp.Succeeded {
		return fmt.Errorf("store: create approval %s: %w", a.ID, ErrExists)
	}
	return nil
}

// Approval implements Approvals.
func (s *Etcd) Approval(ctx context.Context, id string) (ApprovalRecord, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.key("approvals", id))
	if err != nil {
		return ApprovalRecord{}, unavailable("approval "+id, err)
	}
	a, _, err := decodeApproval(id, resp.Kvs)
	return a, err
}

func decodeApproval(id string, kvs []*mvccpb.KeyValue) (ApprovalRecord, int64, error) {
	if len(kvs) == 0 {
		return ApprovalRecord{}, 0, fmt.Errorf("store: %w: approval %s", ErrNotFound, id)
	}
	var a ApprovalRecord
	if err := json.Unmarshal(kvs[0].Value, &a); err != nil {
		return ApprovalRecord{}, 0, fmt.Errorf("store: approval %s: %w", id, err)
	}
	return a, kvs[0].ModRevision, nil
}

// ListApprovals implements Approvals with one range read.
func (s *Etcd) ListApprovals(ctx context.Context, f ApprovalFilter) ([]ApprovalRecord, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.key("approvals")+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, unavailable("list approvals", err)
	}
	var out []ApprovalRecord
	for _, kv := range resp.Kvs {
		var a ApprovalRecord
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			return nil, fmt.Errorf("store: list approvals: %s: %w", kv.Key, err)
		}
		if f.Match(&a) {
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// UpdateApproval implements Approvals with compare-and-swap; change may run
// more than once, each time on the record as stored.
func (s *Etcd) UpdateApproval(ctx context.Context, id string, change func(*ApprovalRecord) error) (ApprovalRecord, error) {
	k := s.key("approvals", id)
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, k)
	if err != nil {
		return ApprovalRecord{}, unavailable("update approval "+id, err)
	}
	kvs := resp.Kvs
	for range maxTxnAttempts {
		a, modRev, err := decodeApproval(id, kvs)
		if err != nil {
			return ApprovalRecord{}, err
		}
		cerr := change(&a)
		if a.ID != id {
			return ApprovalRecord{}, fmt.Errorf("store: update approval %s: change may not alter the id", id)
		}
		nv, err := json.Marshal(a)
		if err != nil {
			return ApprovalRecord{}, fmt.Errorf("store: update approval %s: %w", id, err)
		}
		if bytes.Equal(nv, kvs[0].Value) {
			return a, cerr
		}
		tr, err := s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(k), "=", modRev)).
			Then(clientv3.OpPut(k, string(nv), clientv3.WithIgnoreLease())).
			Else(clientv3.OpGet(k)).
			Commit()
		if err != nil {
			return ApprovalRecord{}, unavailable("update approval "+id, err)
		}
		if tr.Succeeded {
			return a, cerr
		}
		kvs = tr.Responses[0].GetResponseRange().Kvs
	}
	return ApprovalRecord{}, fmt.Errorf("%w: update approval %s: the record kept changing", ErrUnavailable, id)
}
