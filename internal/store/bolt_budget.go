package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Budget counters on bbolt: the value is the tokens used (uint64,
// big-endian) followed by when the counter may go (unix ns, big-endian),
// which is also indexed in the expiries bucket. An 8-byte value, written
// before counters expired, has no due time and is kept until written again.

// counterDueStep rounds the due times that follow the clock (a task's
// counter) up to a whole second, so that a busy counter adds at most one
// index entry a second.
const counterDueStep = time.Second

// boltCounter is one counter as read.
type boltCounter struct {
	used int64
	due  time.Time // zero: no due time (absent, or written before expiry)
}

func getCounter(bk *bolt.Bucket, key string) (boltCounter, bool) {
	v := bk.Get([]byte(key))
	if len(v) < 8 {
		return boltCounter{}, false
	}
	c := boltCounter{used: int64(binary.BigEndian.Uint64(v))}
	if len(v) >= 16 {
		c.due = time.Unix(0, int64(binary.BigEndian.Uint64(v[8:])))
	}
	return c, true
}

// putCounter writes key's counter and, if its due time changed, indexes it.
func putCounter(tx *bolt.Tx, key string, old, c boltCounter) error {
	v := make([]byte, 8, 16)
	binary.BigEndian.PutUint64(v, uint64(c.used))
	if !c.due.IsZero() {
		v = binary.BigEndian.AppendUint64(v, uint64(c.due.UnixNano()))
	}
	if err := tx.Bucket(bucketBudgets).Put([]byte(key), v); err != nil {
		return err
	}
	if c.due.IsZero() || c.due.Equal(old.due) {
		return nil
	}
	return expireAt(tx, c.due, bucketBudgets, []byte(key))
}

// counterDue is when a counter charged now for bg may go.
func (b *Bolt) counterDue(bg Budget, now time.Time) time.Time {
	due := budgetDue(bg, now, b.opts.Retention, b.opts.MaxGrantTTL)
	if bg.Expires.IsZero() {
		if r := due.Truncate(counterDueStep); r.Before(due) {
			due = r.Add(counterDueStep)
		}
	}
	return due
}

// Reserve implements Store in one transaction.
func (b *Bolt) Reserve(ctx context.Context, budgets []Budget, tokens int64) error {
	err := b.update(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketBudgets)
		for _, bg := range budgets {
			c, _ := getCounter(bk, bg.Key)
			if bg.Limit > 0 && c.used+tokens > bg.Limit {
				return &BudgetError{Key: bg.Key, Used: c.used, Limit: bg.Limit, Requested: tokens}
			}
		}
		now := b.clock()
		for _, bg := range budgets {
			old, _ := getCounter(bk, bg.Key)
			if err := putCounter(tx, bg.Key, old, boltCounter{used: old.used + tokens, due: b.counterDue(bg, now)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: reserve: %w", err)
	}
	return nil
}

// Settle implements Store. A counter keeps its due time; one that is
// missing gets the due time of a charge without an expiry.
func (b *Bolt) Settle(ctx context.Context, keys []string, delta int64) error {
	err := b.update(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketBudgets)
		now := b.clock()
		for _, k := range keys {
			old, ok := getCounter(bk, k)
			next := boltCounter{used: max(old.used+delta, 0), due: old.due}
			if !ok {
				next.due = b.counterDue(Budget{Key: k}, now)
			}
			if err := putCounter(tx, k, old, next); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: settle: %w", err)
	}
	return nil
}

// keepTaskCounter extends the due time of a task's counter, if it exists,
// to cover a grant of the task recorded now.
func (b *Bolt) keepTaskCounter(tx *bolt.Tx, task string, now time.Time) error {
	key := TaskBudget(task)
	old, ok := getCounter(tx.Bucket(bucketBudgets), key)
	if !ok || old.due.IsZero() {
		return nil
	}
	due := b.counterDue(Budget{Key: key}, now)
	if !due.After(old.due) {
		return nil
	}
	return putCounter(tx, key, old, boltCounter{used: old.used, due: due})
}

// Usage implements Store.
func (b *Bolt) Usage(_ context.Context, key string) (int64, error) {
	var n int64
	err := b.db.View(func(tx *bolt.Tx) error {
		c, _ := getCounter(tx.Bucket(bucketBudgets), key)
		n = c.used
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: usage: %w", err)
	}
	return n, nil
}
