package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Budgets are decimal counters. Reserve and Settle read every counter, work
// out the new values, and write them in a transaction that holds only if no
// counter changed since the read (compare on each key's modification
// revision, 0 for a key not yet written); a transaction that fails returns
// the current values in the same round trip, and the update is tried again.
// Counters expire with leases (etcd_lease.go): Reserve attaches the lease
// of each counter's due time, Settle keeps the lease a counter has, and
// PutGrant moves a task's counter to a lease that covers the new grant.

// budgetStripes serialize, within one replica, updates of the same budget
// keys, so that compare-and-swap conflicts arise only between replicas.
const budgetStripes = 64

// lockBudgets locks the stripes of keys in ascending order and returns the
// unlock.
func (s *Etcd) lockBudgets(keys []string) func() {
	var idx []int
	for _, k := range keys {
		h := fnv.New32a()
		h.Write([]byte(k))
		idx = append(idx, int(h.Sum32()%budgetStripes))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.budgetMu[i].Lock()
	}
	return func() {
		for _, i := range idx {
			s.budgetMu[i].Unlock()
		}
	}
}

// counter is one budget key as read.
type counter struct {
	key    string
	used   int64
	modRev int64
}

// Reserve implements Store with compare-and-swap. Every counter written
// gets the lease of its due time (see budgetDue).
func (s *Etcd) Reserve(ctx context.Context, budgets []Budget, tokens int64) error {
	limits := map[string]int64{}
	expires := map[string]time.Time{}
	var keys []string
	for _, b := range budgets {
		l, dup := limits[b.Key]
		if !dup {
			keys = append(keys, b.Key)
		}
		if !dup || (b.Limit > 0 && (l == 0 || b.Limit < l)) {
			limits[b.Key] = b.Limit
		}
		// A key given twice keeps the later due time (zero: the latest).
		if e := expires[b.Key]; !dup || (!e.IsZero() && (b.Expires.IsZero() || b.Expires.After(e))) {
			expires[b.Key] = b.Expires
		}
	}
	return s.update(ctx, "reserve", keys, func(cs []counter, now time.Time) ([]int64, []time.Time, error) {
		next, due := make([]int64, len(cs)), make([]time.Time, len(cs))
		for i, c := range cs {
			if l := limits[c.key]; l > 0 && c.used+tokens > l {
				return nil, nil, &BudgetError{Key: c.key, Used: c.used, Limit: l, Requested: tokens}
			}
			next[i] = c.used + tokens
			due[i] = budgetDue(Budget{Expires: expires[c.key]}, now, s.opts.Retention, s.opts.MaxGrantTTL)
		}
		return next, due, nil
	})
}

// Settle implements Store with compare-and-swap. A counter keeps its
// lease; one that is missing gets the lease of a charge without an expiry.
func (s *Etcd) Settle(ctx context.Context, keys []string, delta int64) error {
	seen := map[string]bool{}
	var uniq []string
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	return s.update(ctx, "settle", uniq, func(cs []counter, now time.Time) ([]int64, []time.Time, error) {
		next, due := make([]int64, len(cs)), make([]time.Time, len(cs))
		for i, c := range cs {
			next[i] = max(c.used+delta, 0)
			if c.modRev == 0 {
				due[i] = budgetDue(Budget{}, now, s.opts.Retention, s.opts.MaxGrantTTL)
			}
		}
		return next, due, nil
	})
}

// keepTaskCounter is the operation, for PutGrant's transaction, that
// extends the lease of a task's counter, if it exists, to cover a grant of
// the task recorded now: the counter is rewritten with its own value.
func (s *Etcd) keepTaskCounter(lease clientv3.LeaseID, task string) clientv3.Op {
	k := s.key("budgets", TaskBudget(task))
	return clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), ">", 0)},
		[]clientv3.Op{clientv3.OpPut(k, "", clientv3.WithIgnoreValue(), clientv3.WithLease(lease))},
		nil)
}

// Usage implements Store.
func (s *Etcd) Usage(ctx context.Context, key string) (int64, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.key("budgets", key))
	if err != nil {
		return 0, unavailable("usage", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("store: usage %s: %w", key, err)
	}
	return n, nil
}

// update applies f to the counters of keys atomically. f returns the new
// values and, for each, its due time: the counter is written with the
// lease of that time, or, for a zero time, keeps the lease it has.
func (s *Etcd) update(ctx context.Context, op string, keys []string, f func(cs []counter, now time.Time) ([]int64, []time.Time, error)) error {
	if len(keys) == 0 {
		return nil
	}
	defer s.lockBudgets(keys)()
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	gets := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		gets[i] = clientv3.OpGet(s.key("budgets", k))
	}
	resp, err := s.cli.Txn(rctx).Then(gets...).Commit()
	if err != nil {
		return unavailable(op, err)
	}
	for attempt := range maxTxnAttempts {
		cs, err := s.counters(keys, resp.Responses)
		if err != nil {
			return fmt.Errorf("store: %s: %w", op, err)
		}
		now := s.clock()
		next, due, err := f(cs, now)
		if err != nil {
			return fmt.Errorf("store: %s: %w", op, err)
		}
		cmps := make([]clientv3.Cmp, len(cs))
		puts := make([]clientv3.Op, len(cs))
		for i, c := range cs {
			k := s.key("budgets", c.key)
			cmps[i] = clientv3.Compare(clientv3.ModRevision(k), "=", c.modRev)
			lease := clientv3.WithIgnoreLease()
			if !due[i].IsZero() {
				id, err := s.leases.forExpiry(rctx, due[i], now)
				if err != nil {
					return err
				}
				lease = clientv3.WithLease(id)
			}
			puts[i] = clientv3.OpPut(k, strconv.FormatInt(next[i], 10), lease)
		}
		resp, err = s.cli.Txn(rctx).If(cmps...).Then(puts...).Else(gets...).Commit()
		if leaseLost(err) {
			// A lease this replica remembered is gone: read again, and
			// write with new leases.
			s.leases.reset()
			if resp, err = s.cli.Txn(rctx).Then(gets...).Commit(); err != nil {
				return unavailable(op, err)
			}
			continue
		}
		if err != nil {
			return unavailable(op, err)
		}
		if resp.Succeeded {
			return nil
		}
		if attempt >= 2 {
			// Heavy contention: spread the retries out.
			time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt-2, 4))))
		}
	}
	return fmt.Errorf("%w: %s: budget counters kept changing", ErrUnavailable, op)
}

// counters decodes the range responses of one read of keys.
func (s *Etcd) counters(keys []string, rs []*etcdserverpb.ResponseOp) ([]counter, error) {
	cs := make([]counter, len(keys))
	for i, k := range keys {
		cs[i].key = k
		kvs := rs[i].GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(string(kvs[0].Value), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("budget %s: %w", k, err)
		}
		cs[i].used, cs[i].modRev = n, kvs[0].ModRevision
	}
	return cs, nil
}
