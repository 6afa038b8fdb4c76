package frontend

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmlab/swarmlab/app/vote/internal/ballot"
)

// Pending is one vote waiting for its batch to be written.
type Pending struct {
	Voter  string
	Choice byte
	TS     int64 // set by the batcher just before the write
	Err    error // set by the Sink

	state atomic.Int32
	done  chan struct{} // capacity 1, so the flusher never blocks on it
}

const (
	waiting   int32 = iota
	taken           // in a batch being written: its outcome must be awaited
	abandoned       // caller gave up before it was taken: never written
)

// Sink writes a batch durably, setting Err on each vote it could not write.
type Sink interface {
	Write(ctx context.Context, batch []*Pending)
}

// Batcher is group commit for votes. Requests queue up; a few flusher
// goroutines each take what is queued (waiting up to Linger for more, at most
// Max), write it to the Sink in one round trip (one fsync in Redis), and only
// then release every waiting request. Concurrent requests thus share the cost
// of a durable write instead of paying one fsync each.
type Batcher struct {
	sink    Sink
	queue   chan *Pending
	max     int
	linger  time.Duration
	timeout time.Duration
	pool    sync.Pool
	wg      sync.WaitGroup
}

// BatcherConfig tunes a Batcher; zero values get defaults.
//
// The defaults come from measurement (README): the disk's fsync is the
// bottleneck, and Redis fsyncs once per event-loop turn but reads at most
// 16 KiB per connection per turn, so several writes of ~128 votes (~16 KiB)
// in flight on separate connections fill one fsync better than one big one.
type BatcherConfig struct {
	Max      int           // votes per write (default 128)
	Linger   time.Duration // how long to wait for a batch to fill; 0 = don't
	Flushers int           // writes in flight at once (default 8)
	Timeout  time.Duration // per write (default 5s)
}

// NewBatcher starts the flushers; they stop when ctx is done, so cancel ctx
// only after the HTTP server has stopped handing in votes.
func NewBatcher(ctx context.Context, sink Sink, cfg BatcherConfig) *Batcher {
	if cfg.Max <= 0 {
		cfg.Max = 128
	}
	if cfg.Flushers <= 0 {
		cfg.Flushers = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	b := &Batcher{
		sink:    sink,
		queue:   make(chan *Pending, cfg.Max*cfg.Flushers*4),
		max:     cfg.Max,
		linger:  cfg.Linger,
		timeout: cfg.Timeout,
	}
	b.pool.New = func() any { return &Pending{done: make(chan struct{}, 1)} }
	for range cfg.Flushers {
		b.wg.Add(1)
		go b.flusher(ctx)
	}
	return b
}

// Wait returns once all flushers have stopped.
func (b *Batcher) Wait() { b.wg.Wait() }

// ErrNotRecorded is returned when the caller gave up before the vote was written.
var ErrNotRecorded = errors.New("vote not recorded")

// Record returns nil only once the vote is durable.
func (b *Batcher) Record(ctx context.Context, voter string, choice byte) error {
	p := b.pool.Get().(*Pending)
	p.Voter, p.Choice, p.TS, p.Err = voter, choice, 0, nil
	p.state.Store(waiting)
	select {
	case b.queue <- p:
	case <-ctx.Done():
		b.pool.Put(p)
		return ErrNotRecorded
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		if p.state.CompareAndSwap(waiting, abandoned) {
			return ErrNotRecorded // the flusher will drop it; p is not reused
		}
		<-p.done // already being written; its outcome is the true answer
	}
	err := p.Err
	p.Voter = ""
	b.pool.Put(p)
	return err
}

func (b *Batcher) flusher(ctx context.Context) {
	defer b.wg.Done()
	batch := make([]*Pending, 0, b.max)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case p := <-b.queue:
			batch = b.take(batch[:0], p)
		case <-ctx.Done():
			return
		}
		if b.linger > 0 {
			timer.Reset(b.linger)
		fill:
			for len(batch) < b.max {
				select {
				case p := <-b.queue:
					batch = b.take(batch, p)
				case <-timer.C:
					break fill
				}
			}
			timer.Stop()
		} else {
		drain:
			for len(batch) < b.max {
				select {
				case p := <-b.queue:
					batch = b.take(batch, p)
				default:
					break drain
				}
			}
		}
		if len(batch) == 0 {
			continue
		}
		// Acceptance time is taken here, after the vote arrived and before it
		// is acknowledged, from a clock that never repeats in this process.
		for _, p := range batch {
			p.TS = ballot.Now()
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
		b.sink.Write(wctx, batch)
		cancel()
		for i, p := range batch {
			p.done <- struct{}{}
			batch[i] = nil
		}
	}
}

// take adds p to the batch unless its caller already gave up.
func (b *Batcher) take(batch []*Pending, p *Pending) []*Pending {
	if p.state.CompareAndSwap(waiting, taken) {
		batch = append(batch, p)
	}
	return batch
}
