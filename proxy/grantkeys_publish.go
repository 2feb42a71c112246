package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// GrantKeyPublishOptions configure PublishGrantKeys.
type GrantKeyPublishOptions struct {
	// MaxTTL is the longest TTL of a grant the keyring signs (grants.max_ttl).
	MaxTTL time.Duration
	// Interval is how often the keys are published again (default 1m).
	Interval time.Duration
	Clock    func() time.Time
	Logger   logrus.FieldLogger
}

// GrantKeyPublisher keeps a keyring's keys in the shared set while the
// gateway runs.
type GrantKeyPublisher struct {
	keys *identity.GrantKeyring
	set  store.GrantKeySet
	opts GrantKeyPublishOptions

	cancel context.CancelFunc
	done   chan struct{}
}

// PublishGrantKeys makes a replica's grants verifiable by every replica
// that shares set, and theirs by it: keys's own keys are published with
// NotAfter = now + MaxTTL + 2·Interval, and published again every Interval,
// so that the set keeps each key until every grant it signed has expired
// (plus the store's retention), even if the replica stops; and keys
// accepts every key in the set. It returns once the keys are published, or
// the error that prevented it.
func PublishGrantKeys(ctx context.Context, keys *identity.GrantKeyring, set store.GrantKeySet, o GrantKeyPublishOptions) (*GrantKeyPublisher, error) {
	if keys == nil || set == nil {
		return nil, errors.New("proxy: publish grant keys: no keyring or no key set")
	}
	if o.MaxTTL <= 0 {
		return nil, errors.New("proxy: publish grant keys: MaxTTL must be positive")
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		l := logrus.New()
		l.Out = discard{}
		o.Logger = l
	}
	p := &GrantKeyPublisher{keys: keys, set: set, opts: o, done: make(chan struct{})}
	if err := p.publish(ctx); err != nil {
		return nil, err
	}
	keys.SetPeers(set)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	go p.run(rctx)
	return p, nil
}

func (p *GrantKeyPublisher) publish(ctx context.Context) error {
	notAfter := p.opts.Clock().Add(p.opts.MaxTTL + 2*p.opts.Interval)
	for _, k := range p.keys.PublicKeys() {
		if err := p.set.PublishGrantKey(ctx, store.GrantKeyRecord{ID: k.ID, Public: k.Public, NotAfter: notAfter}); err != nil {
			return fmt.Errorf("proxy: publish grant key %s: %w", k.ID, err)
		}
	}
	return nil
}

func (p *GrantKeyPublisher) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.publish(ctx); err != nil && ctx.Err() == nil {
			p.opts.Logger.WithError(err).Warn("grant keys not republished; other replicas keep them until their published not-after")
		}
	}
}

// Close stops publishing. The keys stay in the set until their NotAfter
// plus retention, so grants they signed keep verifying on other replicas.
func (p *GrantKeyPublisher) Close() error {
	p.cancel()
	<-p.done
	return nil
}
