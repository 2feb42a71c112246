package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Keys that expire (rate-limit state, grant records, revocations,
// approvals, published grant keys, budget counters) are written with an etcd lease, and etcd
// deletes them when it runs out. Rather than one lease per key, a replica
// shares one lease among every key due to go in the same slot of
// LeaseGranularity: a key due at t is attached to the lease of the slot
// that ends at or after t, granted with a TTL that lasts to the end of the
// slot. So a key lives at least until it is due and at most one slot
// longer, and a replica grants at most one lease per slot. etcd never ends a
// lease early (a new leader extends them), so a key can outlive its slot but
// never be deleted before it is due.

type leases struct {
	cli  *clientv3.Client
	gran time.Duration

	mu     sync.Mutex
	bySlot map[int64]clientv3.LeaseID // slot end (unix ns) → lease
}

func newLeases(cli *clientv3.Client, gran time.Duration) *leases {
	return &leases{cli: cli, gran: gran, bySlot: map[int64]clientv3.LeaseID{}}
}

// forExpiry returns a lease that lasts at least until due, now being the
// current time.
func (l *leases) forExpiry(ctx context.Context, due, now time.Time) (clientv3.LeaseID, error) {
	g := int64(l.gran)
	end := (due.UnixNano() + g - 1) / g * g
	l.mu.Lock()
	id, ok := l.bySlot[end]
	l.mu.Unlock()
	if ok {
		return id, nil
	}
	// TTL in whole seconds, rounded up, plus one for the rounding of the
	// server's own clock.
	ttl := int64((time.Duration(end-now.UnixNano())+time.Second-1)/time.Second) + 1
	resp, err := l.cli.Grant(ctx, max(ttl, 1))
	if err != nil {
		return 0, unavailable("grant lease", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.bySlot[end]; ok {
		// Another request granted one meanwhile; the extra lease expires
		// unused.
		return prev, nil
	}
	for s := range l.bySlot {
		if s < now.UnixNano() {
			delete(l.bySlot, s)
		}
	}
	l.bySlot[end] = resp.ID
	return resp.ID, nil
}

// forget drops a lease that etcd no longer has (its TTL ran out early
// because the local clock jumped, or etcd lost it): the next key due in its
// slot gets a new one.
func (l *leases) forget(id clientv3.LeaseID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s, v := range l.bySlot {
		if v == id {
			delete(l.bySlot, s)
		}
	}
}

// reset drops every lease remembered (after a write that used several
// failed because one of them is gone).
func (l *leases) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.bySlot)
}

// leaseLost reports whether a write failed because its lease is gone.
func leaseLost(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound) || errors.Is(err, rpctypes.ErrGRPCLeaseNotFound)
}
