package audit

import (
	"context"
	"errors"
)

// Pending is a record queued by AppendAsync. Its Wait reports when the
// record is durable.
type Pending struct{ e *entry }

// AppendAsync queues ev as the next record and returns at once; the
// record's Pending reports its seq once it is written and fsync'd. It lets
// one goroutine (an importer, a relay) keep many records in flight, so that
// they share fsyncs with each other and with concurrent Appends the way
// concurrent callers do. Records queued by one goroutine get increasing
// seqs, in call order.
//
// A record is acknowledged only when Wait returns its seq: until then it
// may be lost in a crash. Wait for every Pending; a record whose Pending is
// dropped is still written.
func (l *Log) AppendAsync(ev *Event) (*Pending, error) {
	if ev == nil {
		return nil, errors.New("audit: append: nil event")
	}
	e, err := newEntry(ev)
	if err != nil {
		return nil, err
	}
	one := [1]*entry{e}
	if err := l.enqueue(one[:]); err != nil {
		return nil, err
	}
	return &Pending{e: e}, nil
}

// Wait returns the record's seq once it is durable, or Append's errors. If
// ctx ends first, Wait withdraws the record if the writer has not taken it
// yet (no seq is used); otherwise the record may still become durable.
// Wait may be called once.
func (p *Pending) Wait(ctx context.Context) (uint64, error) {
	e := p.e
	if e == nil {
		return 0, errors.New("audit: pending record already waited for")
	}
	p.e = nil
	return e.await(ctx)
}
