package store

import (
	"context"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The revocation view: loaded with one read, then kept current by a watch
// from the revision of that read. run reloads it whenever the watch ends
// (etcd restarted, history compacted, leader lost).

// load replaces the view with what etcd holds now and returns the revision
// it was read at.
func (s *Etcd) load(ctx context.Context) (int64, error) {
	sent := s.clock()
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.key("revoked")+"/", clientv3.WithPrefix())
	if err != nil {
		return 0, unavailable("load revocations", err)
	}
	ids, tasks := map[string]struct{}{}, map[string]struct{}{}
	for _, kv := range resp.Kvs {
		if m, name := s.revocationKey(kv.Key, ids, tasks); m != nil {
			m[name] = struct{}{}
		}
	}
	s.mu.Lock()
	s.revokedID, s.revokedTask = ids, tasks
	s.appliedRev = resp.Header.Revision
	s.freshAt = sent
	s.mu.Unlock()
	return resp.Header.Revision, nil
}

// revocationKey maps a revocation key to the set it belongs in and its name.
func (s *Etcd) revocationKey(key []byte, ids, tasks map[string]struct{}) (map[string]struct{}, string) {
	rest, ok := strings.CutPrefix(string(key), s.key("revoked")+"/")
	if !ok {
		return nil, ""
	}
	kind, esc, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, ""
	}
	name, err := url.PathUnescape(esc)
	if err != nil {
		return nil, ""
	}
	switch kind {
	case "grants":
		return ids, name
	case "tasks":
		return tasks, name
	}
	return nil, ""
}

func (s *Etcd) run(ctx context.Context, rev int64) {
	defer close(s.done)
	for {
		s.follow(ctx, rev)
		for {
			if ctx.Err() != nil {
				return
			}
			var err error
			if rev, err = s.load(ctx); err == nil {
				break
			}
			s.log.WithError(err).Warn("revocation view not reloaded; revocation checks fail closed once it is stale")
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.opts.ProbeInterval):
			}
		}
	}
}

// follow applies watch events from rev+1 until the watch ends, and confirms
// the view every ProbeInterval.
func (s *Etcd) follow(ctx context.Context, rev int64) {
	// WithRequireLeader: a member cut off from its cluster ends the watch
	// instead of serving a stale one.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cli.Watch(wctx, s.key("revoked")+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	go s.probeLoop(wctx)
	for wr := range wch {
		if err := wr.Err(); err != nil {
			s.log.WithError(err).Warn("revocation watch ended; reloading")
			return
		}
		s.apply(&wr)
	}
}

// apply adds the events of one watch response to the view.
func (s *Etcd) apply(wr *clientv3.WatchResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range wr.Events {
		m, name := s.revocationKey(ev.Kv.Key, s.revokedID, s.revokedTask)
		if m != nil {
			if ev.Type == mvccpb.DELETE {
				delete(m, name) // an operator withdrew it
			} else {
				m[name] = struct{}{}
			}
		}
		s.appliedRev = max(s.appliedRev, ev.Kv.ModRevision)
	}
	if wr.IsProgressNotify() {
		// Every event up to the header's revision has been delivered.
		s.appliedRev = max(s.appliedRev, wr.Header.Revision)
	}
	s.confirmLocked()
}

// confirmLocked moves freshAt to the latest probe once the view has caught
// up with the revision that probe saw.
func (s *Etcd) confirmLocked() {
	if s.probe.rev != 0 && s.appliedRev >= s.probe.rev && s.probe.sentAt.After(s.freshAt) {
		s.freshAt = s.probe.sentAt
	}
}

// probeLoop reads the cluster's current revision (linearizably, so a
// partitioned member cannot answer) and asks the watch for a progress
// notification, which tells when the view has caught up with it.
func (s *Etcd) probeLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := s.clock()
		rctx, cancel := s.reqCtx(ctx)
		resp, err := s.cli.Get(rctx, s.key("revoked"), clientv3.WithCountOnly())
		if err == nil {
			s.mu.Lock()
			s.probe = probe{sentAt: sent, rev: resp.Header.Revision}
			s.confirmLocked()
			s.mu.Unlock()
			// Same metadata as the watch's context: the same stream.
			err = s.cli.RequestProgress(rctx)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.WithError(err).Warn("revocation view not confirmed")
		}
	}
}
