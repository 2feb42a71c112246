package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
)

// Bucket names of the bbolt file.
var (
	bucketGrants   = []byte("grants")         // id → GrantRecord JSON
	bucketChildren = []byte("children")       // parent "\x00" child → empty
	bucketRevGrant = []byte("revoked_grants") // id → revocation JSON
	bucketRevTask  = []byte("revoked_tasks")  // task → revocation JSON
	bucketBudgets  = []byte("budgets")        // key → counter (see bolt_budget.go)
)

type revocation struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	// Expires is when the revocation may be deleted (see Expiry); zero in
	// records written before expiry existed, which are kept.
	Expires time.Time `json:"expires,omitzero"`
}

// BoltOptions configure OpenBolt.
type BoltOptions struct {
	// Timeout bounds waiting for the file lock held by another process.
	Timeout time.Duration
	Clock   func() time.Time
	// Retention and MaxGrantTTL say how long records outlive their expiry
	// (see Expiry in store.go).
	Retention   time.Duration
	MaxGrantTTL time.Duration
	// SweepInterval is how often expired records are deleted (default 1m;
	// negative: never by itself, only when Sweep is called).
	SweepInterval time.Duration
	// Logger receives sweep failures (default: none).
	Logger logrus.FieldLogger
}

// Bolt is a Store on an embedded bbolt file. Revocations are also kept in
// memory, loaded at open and updated after each commit, so IsRevoked never
// touches the disk.
type Bolt struct {
	db    *bolt.DB
	opts  BoltOptions
	clock func() time.Time

	mu          sync.RWMutex
	revokedID   map[string]struct{}
	revokedTask map[string]struct{}

	// rates are in memory: one node's rate-limit state needs no disk, and
	// a bbolt transaction per request would fsync.
	rates     *LocalRates
	grantKeys *keyView

	stopSweep chan struct{}
	sweepDone chan struct{}
}

var (
	_ Store       = (*Bolt)(nil)
	_ RateLimiter = (*Bolt)(nil)
)

// OpenBolt opens (creating if needed, 0600) the store at path and loads its
// revocations.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	opts.Retention, opts.MaxGrantTTL = expiryDefaults(opts.Retention, opts.MaxGrantTTL)
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Minute
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	b := &Bolt{db: db, clock: opts.Clock, revokedID: map[string]struct{}{}, revokedTask: map[string]struct{}{},
		rates: NewLocalRates(opts.Clock), grantKeys: newKeyView(opts.Clock, opts.Retention), opts: opts}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketGrants, bucketChildren, bucketRevGrant, bucketRevTask, bucketBudgets, bucketExpiries} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketRevGrant).ForEach(func(k, _ []byte) error {
			b.revokedID[string(k)] = struct{}{}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketRevTask).ForEach(func(k, _ []byte) error {
			b.revokedTask[string(k)] = struct{}{}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: load %s: %w", path, err)
	}
	b.stopSweep, b.sweepDone = make(chan struct{}), make(chan struct{})
	if opts.SweepInterval > 0 {
		go b.sweepLoop(opts.SweepInterval)
	} else {
		close(b.sweepDone)
	}
	return b, nil
}

// AllowRate implements RateLimiter in memory (see LocalRates).
func (b *Bolt) AllowRate(ctx context.Context, key string, r Rate) (bool, time.Duration, error) {
	return b.rates.AllowRate(ctx, key, r)
}

// Close stops the sweeper and closes the file.
func (b *Bolt) Close() error {
	select {
	case <-b.stopSweep:
	default:
		close(b.stopSweep)
	}
	<-b.sweepDone
	return b.db.Close()
}

func (b *Bolt) update(ctx context.Context, f func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return b.db.Update(f)
}

// PutGrant implements Store.
func (b *Bolt) PutGrant(ctx context.Context, g GrantRecord) error {
	rec, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	inherit := false
	err = b.update(ctx, func(tx *bolt.Tx) error {
		now := b.clock()
		due := b.grantDue(tx, g.ID, now)
		if !g.Expiry.IsZero() {
			due = g.Expiry.Add(b.opts.Retention)
		}
		if err := tx.Bucket(bucketGrants).Put([]byte(g.ID), rec); err != nil {
			return err
		}
		if err := expireAt(tx, due, bucketGrants, []byte(g.ID)); err != nil {
			return err
		}
		if err := b.keepTaskCounter(tx, g.Task, now); err != nil {
			return err
		}
		if g.Parent == "" {
			return nil
		}
		if err := tx.Bucket(bucketChildren).Put(childKey(g.Parent, g.ID), nil); err != nil {
			return err
		}
		if err := expireAt(tx, due, bucketChildren, childKey(g.Parent, g.ID)); err != nil {
			return err
		}
		if tx.Bucket(bucketRevGrant).Get([]byte(g.Parent)) != nil {
			inherit = true
			return b.putRevocation(tx, bucketRevGrant, g.ID, revocation{At: now, Reason: "parent " + g.Parent + " is revoked", Expires: due})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put grant %s: %w", g.ID, err)
	}
	if inherit {
		b.mu.Lock()
		b.revokedID[g.ID] = struct{}{}
		b.mu.Unlock()
	}
	return nil
}

func childKey(parent, child string) []byte {
	return []byte(parent + "\x00" + child)
}

// putRevocation writes a revocation and indexes its expiry.
func (b *Bolt) putRevocation(tx *bolt.Tx, bucket []byte, key string, r revocation) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucket).Put([]byte(key), v); err != nil {
		return err
	}
	return expireAt(tx, r.Expires, bucket, []byte(key))
}

// Grant implements Store.
func (b *Bolt) Grant(ctx context.Context, id string) (GrantRecord, error) {
	var g GrantRecord
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketGrants).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: grant %s", ErrNotFound, id)
		}
		return json.Unmarshal(v, &g)
	})
	if err != nil {
		return GrantRecord{}, fmt.Errorf("store: %w", err)
	}
	return g, nil
}

// RevokeGrant implements Store.
func (b *Bolt) RevokeGrant(ctx context.Context, id, reason string) ([]string, error) {
	var ids []string
	err := b.update(ctx, func(tx *bolt.Tx) error {
		ids = ids[:0]
		rev, children := tx.Bucket(bucketRevGrant), tx.Bucket(bucketChildren)
		queue := []string{id}
		seen := map[string]bool{id: true}
		at := b.clock()
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			ids = append(ids, cur)
			r := revocation{At: at, Reason: reason, Expires: b.grantDue(tx, cur, at)}
			if cur != id {
				r.Reason = "ancestor " + id + " revoked: " + reason
			}
			if rev.Get([]byte(cur)) == nil {
				if err := b.putRevocation(tx, bucketRevGrant, cur, r); err != nil {
					return err
				}
			}
			prefix := []byte(cur + "\x00")
			c := children.Cursor()
			for k, _ := c.Seek(prefix); k != nil && len(k) > len(prefix) && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
				child := string(k[len(prefix):])
				if !seen[child] {
					seen[child] = true
					queue = append(queue, child)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: revoke grant %s: %w", id, err)
	}
	b.mu.Lock()
	for _, r := range ids {
		b.revokedID[r] = struct{}{}
	}
	b.mu.Unlock()
	return ids, nil
}

// RevokeTask implements Store.
func (b *Bolt) RevokeTask(ctx context.Context, task, reason string) error {
	err := b.update(ctx, func(tx *bolt.Tx) error {
		now := b.clock()
		return b.putRevocation(tx, bucketRevTask, task, revocation{At: now, Reason: reason, Expires: now.Add(b.opts.MaxGrantTTL + b.opts.Retention)})
	})
	if err != nil {
		return fmt.Errorf("store: revoke task %s: %w", task, err)
	}
	b.mu.Lock()
	b.revokedTask[task] = struct{}{}
	b.mu.Unlock()
	return nil
}

// IsRevoked implements Store from memory.
func (b *Bolt) IsRevoked(_ context.Context, grantID, task string) (bool, error) {
	b.mu.RLock()
	_, g := b.revokedID[grantID]
	_, t := b.revokedTask[task]
	b.mu.RUnlock()
	return g || t, nil
}
