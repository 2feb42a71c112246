package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxTxnAttempts bounds compare-and-swap retries under contention.
const maxTxnAttempts = 64

// PutGrant implements Store: one transaction writes the record and the
// parent link, and the grant's revocation too if its parent is revoked, and
// extends the lease of the task's budget counter.
func (s *Etcd) PutGrant(ctx context.Context, g GrantRecord) error {
	rec, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	now := s.clock()
	due := now.Add(s.opts.MaxGrantTTL + s.opts.Retention)
	if !g.Expiry.IsZero() {
		due = g.Expiry.Add(s.opts.Retention)
	}
	r, err := s.revocationJSON(revocation{At: now, Reason: "parent " + g.Parent + " is revoked", Expires: due})
	if err != nil {
		return err
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	var resp *clientv3.TxnResponse
	for attempt := 0; ; attempt++ {
		// The record, its parent link and an inherited revocation share
		// the lease that ends when the grant is past retention.
		lease, err := s.leases.forExpiry(rctx, due, now)
		if err != nil {
			return err
		}
		// The task's budget counter, if it exists, is kept while the
		// new grant can charge it.
		taskLease, err := s.leases.forExpiry(rctx, budgetDue(Budget{}, now, s.opts.Retention, s.opts.MaxGrantTTL), now)
		if err != nil {
			return err
		}
		ops := []clientv3.Op{
			clientv3.OpPut(s.key("grants", g.ID), string(rec), clientv3.WithLease(lease)),
			s.keepTaskCounter(taskLease, g.Task),
		}
		txn := s.cli.Txn(rctx)
		if g.Parent == "" {
			txn = txn.Then(ops...)
		} else {
			ops = append(ops, clientv3.OpPut(s.key("children", g.Parent, g.ID), "", clientv3.WithLease(lease)))
			txn = txn.If(clientv3.Compare(clientv3.Version(s.key("revoked", "grants", g.Parent)), ">", 0)).
				Then(append(ops, clientv3.OpPut(s.key("revoked", "grants", g.ID), r, clientv3.WithLease(lease)))...).
				Else(ops...)
		}
		resp, err = txn.Commit()
		if leaseLost(err) && attempt == 0 {
			s.leases.reset()
			continue
		}
		if err != nil {
			return unavailable("put grant "+g.ID, err)
		}
		break
	}
	if g.Parent == "" {
		return nil
	}
	if resp.Succeeded {
		s.mu.Lock()
		s.revokedID[g.ID] = struct{}{}
		s.mu.Unlock()
	}
	return nil
}

func (s *Etcd) revocationJSON(r revocation) (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	return string(b), nil
}

// Grant implements Store.
func (s *Etcd) Grant(ctx context.Context, id string) (GrantRecord, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.key("grants", id))
	if err != nil {
		return GrantRecord{}, unavailable("grant "+id, err)
	}
	if len(resp.Kvs) == 0 {
		return GrantRecord{}, fmt.Errorf("store: %w: grant %s", ErrNotFound, id)
	}
	var g GrantRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &g); err != nil {
		return GrantRecord{}, fmt.Errorf("store: grant %s: %w", id, err)
	}
	return g, nil
}

// RevokeGrant implements Store. It reads the tree of descendants at one
// revision and writes their revocations in a transaction that holds only if
// no grant was delegated from any of them since; otherwise it reads again.
// A grant delegated after the commit is born revoked (PutGrant).
func (s *Etcd) RevokeGrant(ctx context.Context, id, reason string) ([]string, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	for range maxTxnAttempts {
		ids, cmps, puts, err := s.revocationTree(rctx, id, reason)
		if err != nil {
			return nil, err
		}
		resp, err := s.cli.Txn(rctx).If(cmps...).Then(puts...).Commit()
		if leaseLost(err) {
			s.leases.reset()
			continue
		}
		if err != nil {
			return nil, unavailable("revoke grant "+id, err)
		}
		if !resp.Succeeded {
			continue
		}
		s.mu.Lock()
		for _, r := range ids {
			s.revokedID[r] = struct{}{}
		}
		s.mu.Unlock()
		return ids, nil
	}
	return nil, fmt.Errorf("%w: revoke grant %s: the grant tree kept changing", ErrUnavailable, id)
}

// revocationTree walks id's descendants breadth first at one revision and
// returns them with the transaction that revokes them.
func (s *Etcd) revocationTree(ctx context.Context, id, reason string) ([]string, []clientv3.Cmp, []clientv3.Op, error) {
	var (
		ids  []string
		cmps []clientv3.Cmp
		puts []clientv3.Op
		rev  int64 // the revision every read is made at
	)
	at := s.clock()
	queue := []string{id}
	seen := map[string]bool{id: true}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		ids = append(ids, cur)
		childPrefix := s.key("children", cur) + "/"
		revKey := s.key("revoked", "grants", cur)
		opts := []clientv3.OpOption{}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Txn(ctx).Then(
			clientv3.OpGet(childPrefix, append(opts, clientv3.WithPrefix(), clientv3.WithKeysOnly())...),
			clientv3.OpGet(revKey, append(opts, clientv3.WithCountOnly())...),
			clientv3.OpGet(s.key("grants", cur), opts...),
		).Commit()
		if err != nil {
			return nil, nil, nil, unavailable("revoke grant "+id, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		children, revoked := resp.Responses[0].GetResponseRange(), resp.Responses[1].GetResponseRange()
		// Nothing may be delegated from cur between this read and the write.
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(childPrefix), "<", rev+1).WithPrefix())
		if revoked.Count == 0 {
			// The revocation lasts as long as the grant could be accepted.
			r := revocation{At: at, Reason: reason, Expires: at.Add(s.opts.MaxGrantTTL + s.opts.Retention)}
			var g GrantRecord
			if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 && json.Unmarshal(kvs[0].Value, &g) == nil && !g.Expiry.IsZero() {
				r.Expires = g.Expiry.Add(s.opts.Retention)
			}
			if cur != id {
				r.Reason = "ancestor " + id + " revoked: " + reason
			}
			v, err := s.revocationJSON(r)
			if err != nil {
				return nil, nil, nil, err
			}
			lease, err := s.leases.forExpiry(ctx, r.Expires, at)
			if err != nil {
				return nil, nil, nil, err
			}
			cmps = append(cmps, clientv3.Compare(clientv3.Version(revKey), "=", 0))
			puts = append(puts, clientv3.OpPut(revKey, v, clientv3.WithLease(lease)))
		}
		for _, kv := range children.Kvs {
			m, child := s.childOf(kv.Key, childPrefix)
			if m && !seen[child] {
				seen[child] = true
				queue = append(queue, child)
			}
		}
	}
	return ids, cmps, puts, nil
}

// childOf returns the child id of a children/ key under prefix.
func (s *Etcd) childOf(key []byte, prefix string) (bool, string) {
	esc, ok := strings.CutPrefix(string(key), prefix)
	if !ok {
		return false, ""
	}
	child, err := url.PathUnescape(esc)
	return err == nil, child
}

// RevokeTask implements Store. The first revocation's time and reason stay.
func (s *Etcd) RevokeTask(ctx context.Context, task, reason string) error {
	now := s.clock()
	r := revocation{At: now, Reason: reason, Expires: now.Add(s.opts.MaxGrantTTL + s.opts.Retention)}
	v, err := s.revocationJSON(r)
	if err != nil {
		return err
	}
	k := s.key("revoked", "tasks", task)
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		lease, err := s.leases.forExpiry(rctx, r.Expires, now)
		if err != nil {
			return err
		}
		_, err = s.cli.Txn(rctx).If(clientv3.Compare(clientv3.Version(k), "=", 0)).Then(clientv3.OpPut(k, v, clientv3.WithLease(lease))).Commit()
		if leaseLost(err) && attempt == 0 {
			s.leases.reset()
			continue
		}
		if err != nil {
			return unavailable("revoke task "+task, err)
		}
		break
	}
	s.mu.Lock()
	s.revokedTask[task] = struct{}{}
	s.mu.Unlock()
	return nil
}

// IsRevoked implements Store from the in-memory view. A grant known to be
// revoked is revoked whatever the view's age; otherwise the answer holds
// only if the view was confirmed within StaleAfter, and the call fails with
// ErrUnavailable when it was not.
func (s *Etcd) IsRevoked(_ context.Context, grantID, task string) (bool, error) {
	s.mu.RLock()
	_, g := s.revokedID[grantID]
	_, t := s.revokedTask[task]
	fresh := s.freshAt
	s.mu.RUnlock()
	if g || t {
		return true, nil
	}
	if age := s.clock().Sub(fresh); age > s.opts.StaleAfter {
		return false, fmt.Errorf("%w: etcd revocations last confirmed %s ago", ErrUnavailable, age.Round(time.Millisecond))
	}
	return false, nil
}
