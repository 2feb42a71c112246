package store

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Published grant keys live at grantkeys/<kid> as GrantKeyRecord JSON,
// attached to a lease that lasts until NotAfter plus Retention: a replica
// republishes its keys while it runs, pushing NotAfter forward, and when it
// stops its keys stay until every grant they signed has expired. Each
// replica loads the set at start and follows it with a watch, so lookups
// answer from memory; a key another replica publishes is seen within
// milliseconds. (No freshness bound is needed here: a replica that has not
// seen a key refuses grants signed with it, which fails closed.)

var _ GrantKeySet = (*Etcd)(nil)

// PublishGrantKey implements GrantKeySet: create, or extend NotAfter with a
// compare-and-swap, so that two replicas publishing one shared key never
// shorten each other's promise.
func (s *Etcd) PublishGrantKey(ctx context.Context, k GrantKeyRecord) error {
	v, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("store: publish grant key: %w", err)
	}
	key := s.key("grantkeys", k.ID)
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, key)
	if err != nil {
		return unavailable("publish grant key", err)
	}
	kvs := resp.Kvs
	for range maxTxnAttempts {
		var modRev int64
		if len(kvs) > 0 {
			var old GrantKeyRecord
			if json.Unmarshal(kvs[0].Value, &old) == nil && !old.NotAfter.Before(k.NotAfter) {
				s.grantKeys.merge(old)
				return nil
			}
			modRev = kvs[0].ModRevision
		}
		lease, err := s.leases.forExpiry(rctx, k.NotAfter.Add(s.opts.Retention), s.clock())
		if err != nil {
			return err
		}
		tr, err := s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
			Then(clientv3.OpPut(key, string(v), clientv3.WithLease(lease))).
			Else(clientv3.OpGet(key)).
			Commit()
		if leaseLost(err) {
			s.leases.forget(lease)
			continue
		}
		if err != nil {
			return unavailable("publish grant key", err)
		}
		if tr.Succeeded {
			s.grantKeys.merge(k)
			return nil
		}
		kvs = tr.Responses[0].GetResponseRange().Kvs
	}
	return fmt.Errorf("%w: publish grant key %s: the record kept changing", ErrUnavailable, k.ID)
}

// GrantPublicKey implements GrantKeySet from the watched view.
func (s *Etcd) GrantPublicKey(kid string) (ed25519.PublicKey, bool) { return s.grantKeys.get(kid) }

// GrantPublicKeys implements GrantKeySet from the watched view.
func (s *Etcd) GrantPublicKeys() map[string]ed25519.PublicKey { return s.grantKeys.all() }

// loadKeys replaces the key view with what etcd holds and returns the
// revision it was read at.
func (s *Etcd) loadKeys(ctx context.Context) (int64, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.key("grantkeys")+"/", clientv3.WithPrefix())
	if err != nil {
		return 0, unavailable("load grant keys", err)
	}
	keys := map[string]GrantKeyRecord{}
	for _, kv := range resp.Kvs {
		if k, ok := s.decodeGrantKey(kv); ok {
			keys[k.ID] = k
		}
	}
	s.grantKeys.replace(keys)
	return resp.Header.Revision, nil
}

// decodeGrantKey reads one grantkeys/ entry; a malformed one is skipped.
func (s *Etcd) decodeGrantKey(kv *mvccpb.KeyValue) (GrantKeyRecord, bool) {
	var k GrantKeyRecord
	if err := json.Unmarshal(kv.Value, &k); err != nil || len(k.Public) != ed25519.PublicKeySize {
		s.log.WithField("key", string(kv.Key)).Warn("malformed grant key record ignored")
		return GrantKeyRecord{}, false
	}
	if id, ok := s.grantKeyID(kv.Key); !ok || id != k.ID {
		return GrantKeyRecord{}, false
	}
	return k, true
}

func (s *Etcd) grantKeyID(key []byte) (string, bool) {
	esc, ok := strings.CutPrefix(string(key), s.key("grantkeys")+"/")
	if !ok {
		return "", false
	}
	id, err := url.PathUnescape(esc)
	return id, err == nil
}

// runKeys follows the key set from rev until ctx ends, reloading it when
// the watch ends.
func (s *Etcd) runKeys(ctx context.Context, rev int64) {
	defer close(s.keysDone)
	for {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range s.cli.Watch(wctx, s.key("grantkeys")+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if err := wr.Err(); err != nil {
				s.log.WithError(err).Warn("grant key watch ended; reloading")
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					if id, ok := s.grantKeyID(ev.Kv.Key); ok {
						s.grantKeys.remove(id)
					}
				} else if k, ok := s.decodeGrantKey(ev.Kv); ok {
					s.grantKeys.merge(k)
				}
			}
		}
		cancel()
		for {
			if ctx.Err() != nil {
				return
			}
			var err error
			if rev, err = s.loadKeys(ctx); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.opts.ProbeInterval):
			}
		}
	}
}
