package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Rate limits live at ratelimits/<key> as the key's GCRA theoretical arrival
// time (unix nanoseconds, decimal), attached to a lease that ends after it
// (see leases): once the TAT has passed the key means nothing and etcd
// deletes it.
//
// A request is one transaction: "if the key's modification revision is
// still the one this replica last saw, put the new TAT, else read it". The
// replica remembers each key's TAT and revision from its last transaction,
// so while no other replica touches the key every request costs exactly one
// round trip; when one did, the transaction fails, returns the current
// value, and is tried again. A request refused on the remembered TAT needs
// no round trip at all: the TAT only ever grows, so the real one refuses it
// too. Within one replica, requests on the same key queue on a stripe lock
// instead of conflicting.

// rateStripes serialize, within one replica, requests on the same key.
const rateStripes = 64

type rateState struct {
	tat    int64 // unix ns; 0: none
	modRev int64 // 0: the key does not exist
}

type rateCache struct {
	stripes [rateStripes]sync.Mutex
	mu      sync.Mutex
	known   map[string]rateState
}

// maxRateCache bounds the remembered keys; past it, passed TATs are dropped.
const maxRateCache = 100_000

func (c *rateCache) lock(key string) func() {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &c.stripes[h.Sum32()%rateStripes]
	m.Lock()
	return m.Unlock
}

func (c *rateCache) get(key string) (rateState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.known[key]
	return st, ok
}

func (c *rateCache) put(key string, st rateState, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		c.known = map[string]rateState{}
	}
	if _, ok := c.known[key]; !ok && len(c.known) >= maxRateCache {
		for k, v := range c.known {
			if v.tat < now {
				delete(c.known, k)
			}
		}
	}
	c.known[key] = st
}

func (c *rateCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.known, key)
}

var _ RateLimiter = (*Etcd)(nil)

// AllowRate implements RateLimiter with one compare-and-swap transaction
// per allowed request, shared by every replica.
func (s *Etcd) AllowRate(ctx context.Context, key string, r Rate) (bool, time.Duration, error) {
	k := s.key("ratelimits", key)
	defer s.rates.lock(k)()
	now := s.clock()
	st, known := s.rates.get(k)
	if known {
		if ok, _, wait := gcra(st.tat, now.UnixNano(), r); !ok {
			return false, wait, nil
		}
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	if !known {
		resp, err := s.cli.Get(rctx, k)
		if err != nil {
			return false, 0, unavailable("rate limit", err)
		}
		if st, err = decodeRate(resp.Kvs); err != nil {
			return false, 0, err
		}
	}
	for range maxTxnAttempts {
		ok, next, wait := gcra(st.tat, now.UnixNano(), r)
		if !ok {
			s.rates.put(k, st, now.UnixNano())
			return false, wait, nil
		}
		lease, err := s.leases.forExpiry(rctx, time.Unix(0, next), now)
		if err != nil {
			return false, 0, err
		}
		resp, err := s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(k), "=", st.modRev)).
			Then(clientv3.OpPut(k, strconv.FormatInt(next, 10), clientv3.WithLease(lease))).
			Else(clientv3.OpGet(k)).
			Commit()
		if leaseLost(err) {
			s.leases.forget(lease)
			continue
		}
		if err != nil {
			s.rates.drop(k)
			return false, 0, unavailable("rate limit", err)
		}
		if resp.Succeeded {
			s.rates.put(k, rateState{tat: next, modRev: resp.Header.Revision}, now.UnixNano())
			return true, 0, nil
		}
		if st, err = decodeRate(resp.Responses[0].GetResponseRange().Kvs); err != nil {
			return false, 0, err
		}
	}
	return false, 0, fmt.Errorf("%w: rate limit %s: the counter kept changing", ErrUnavailable, key)
}

func decodeRate(kvs []*mvccpb.KeyValue) (rateState, error) {
	if len(kvs) == 0 {
		return rateState{}, nil
	}
	tat, err := strconv.ParseInt(string(kvs[0].Value), 10, 64)
	if err != nil {
		return rateState{}, fmt.Errorf("store: rate limit %s: %w", kvs[0].Key, err)
	}
	return rateState{tat: tat, modRev: kvs[0].ModRevision}, nil
}
