package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdOptions configure OpenEtcd.
type EtcdOptions struct {
	// Endpoints are the etcd members' client URLs, e.g. https://10.0.0.5:2379.
	Endpoints []string
	// TLS, when set, is used for every connection (client certificate and
	// CA); nil means plain HTTP, for loopback tests only.
	TLS *tls.Config
	// Username and Password authenticate to etcd when its auth is enabled.
	Username, Password string
	// Prefix is prepended to every key (default "/portcullis/"). Replicas
	// that share state use the same prefix; separate fleets use separate ones.
	Prefix string
	// DialTimeout bounds waiting for the first connection (default 5s).
	DialTimeout time.Duration
	// RequestTimeout bounds every read and write (default 2s). A request
	// that runs out fails with ErrUnavailable and the gateway refuses.
	RequestTimeout time.Duration
	// StaleAfter is how long the in-memory revocation view may go without
	// being confirmed current before IsRevoked fails closed (default 2s).
	// It is the most a revocation can take to be enforced by every replica.
	StaleAfter time.Duration
	// ProbeInterval is how often the view is confirmed (default StaleAfter/4).
	ProbeInterval time.Duration
	// Retention and MaxGrantTTL say how long records outlive their expiry
	// (see Expiry in store.go).
	Retention   time.Duration
	MaxGrantTTL time.Duration
	// LeaseGranularity is the slot of the leases that expire keys (default
	// 10s): a key is deleted between its due time and one slot later.
	LeaseGranularity time.Duration
	Clock            func() time.Time
	Logger           logrus.FieldLogger
}

// Etcd is a Store on an etcd cluster, shared by every gateway replica that
// uses the same endpoints and prefix.
//
// Revocations are written with transactions and watched: each replica keeps
// them in memory, so IsRevoked never makes a network call. The view is
// confirmed current every ProbeInterval (a linearizable read gives the
// cluster's revision, and the watch's progress notification says when every
// event up to it has arrived); when it has not been confirmed for
// StaleAfter, IsRevoked fails with ErrUnavailable rather than answer from a
// view that may be missing a revocation. Budgets are counters updated with
// compare-and-swap on their keys' modification revisions.
//
// Keys, under Prefix (ids and task keys path-escaped):
//
//	grants/<id>                 GrantRecord JSON
//	children/<parent>/<child>   empty: <child> was delegated from <parent>
//	revoked/grants/<id>         {"at":…, "reason":…}
//	revoked/tasks/<task>        {"at":…, "reason":…}
//	budgets/<key>               tokens used, decimal (leased, see Expiry)
//	ratelimits/<key>            GCRA theoretical arrival time, unix ns (leased)
//	grantkeys/<kid>             GrantKeyRecord JSON (leased), watched
type Etcd struct {
	cli   *clientv3.Client
	opts  EtcdOptions
	clock func() time.Time
	log   logrus.FieldLogger

	mu          sync.RWMutex
	revokedID   map[string]struct{}
	revokedTask map[string]struct{}
	appliedRev  int64     // every revocation event up to this revision is in the maps
	freshAt     time.Time // every revocation committed before this is in the maps
	probe       probe     // the latest confirmation in flight

	budgetMu [budgetStripes]sync.Mutex
	rates    rateCache
	leases   *leases

	grantKeys *keyView
	keysDone  chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

// probe is a linearizable read sent at sentAt that saw the cluster at rev.
type probe struct {
	sentAt time.Time
	rev    int64
}

var _ Store = (*Etcd)(nil)

// OpenEtcd connects to etcd, loads the revocations and starts watching
// them. It returns once the view is loaded, or an error wrapping
// ErrUnavailable if etcd cannot be reached within DialTimeout.
func OpenEtcd(ctx context.Context, opts EtcdOptions) (*Etcd, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("store: etcd: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = "/portcullis/"
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 2 * time.Second
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 2 * time.Second
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = opts.StaleAfter / 4
	}
	opts.Retention, opts.MaxGrantTTL = expiryDefaults(opts.Retention, opts.MaxGrantTTL)
	if opts.LeaseGranularity <= 0 {
		opts.LeaseGranularity = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.Out = discard{}
		opts.Logger = l
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            opts.Endpoints,
		TLS:                  opts.TLS,
		Username:             opts.Username,
		Password:             opts.Password,
		DialTimeout:          opts.DialTimeout,
		DialKeepAliveTime:    opts.StaleAfter,
		DialKeepAliveTimeout: opts.StaleAfter,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("store: etcd %v: %w", opts.Endpoints, err)
	}
	s := &Etcd{
		cli: cli, opts: opts, clock: opts.Clock, log: opts.Logger.WithField("store", "etcd"),
		revokedID: map[string]struct{}{}, revokedTask: map[string]struct{}{},
		done: make(chan struct{}), leases: newLeases(cli, opts.LeaseGranularity),
		grantKeys: newKeyView(opts.Clock, opts.Retention), keysDone: make(chan struct{}),
	}
	lctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	rev, err := s.load(lctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("store: etcd %v: load revocations: %w", opts.Endpoints, err)
	}
	keysRev, err := s.loadKeys(lctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("store: etcd %v: %w", opts.Endpoints, err)
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = stop
	go s.run(rctx, rev)
	go s.runKeys(rctx, keysRev)
	return s, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Close stops the watch and closes the connection.
func (s *Etcd) Close() error {
	s.cancel()
	<-s.done
	<-s.keysDone
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: etcd: close: %w", err)
	}
	return nil
}

// Health reports whether the revocation view is current: the ops
// listener's readiness check. It makes no request of its own; the view is
// confirmed by a linearizable read every ProbeInterval.
func (s *Etcd) Health(now time.Time) (string, error) {
	s.mu.RLock()
	fresh, rev := s.freshAt, s.appliedRev
	s.mu.RUnlock()
	age := now.Sub(fresh)
	if age > s.opts.StaleAfter {
		return "", fmt.Errorf("%w: etcd %v: revocations last confirmed %s ago (limit %s); revocation checks fail closed",
			ErrUnavailable, s.opts.Endpoints, age.Round(time.Millisecond), s.opts.StaleAfter)
	}
	return fmt.Sprintf("etcd %v, revocations current at revision %d, confirmed %s ago",
		s.opts.Endpoints, rev, age.Round(time.Millisecond)), nil
}

// key builds a key under the prefix from path segments, each escaped.
func (s *Etcd) key(kind string, parts ...string) string {
	var b strings.Builder
	b.WriteString(s.opts.Prefix)
	b.WriteString(kind)
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// reqCtx bounds one request to etcd.
func (s *Etcd) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.RequestTimeout)
}

// unavailable wraps an etcd client error.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}
