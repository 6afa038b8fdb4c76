package frontend

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type written struct {
	Voter  string
	Choice byte
	TS     int64
}

// fakeSink records batches; it can block and fail on demand.
type fakeSink struct {
	mu      sync.Mutex
	batches [][]written
	gate    chan struct{} // if set, each write waits for a value
	fail    func(p *Pending) error
}

func (s *fakeSink) Write(ctx context.Context, batch []*Pending) {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ws []written
	for _, p := range batch {
		if s.fail != nil {
			p.Err = s.fail(p)
		}
		ws = append(ws, written{p.Voter, p.Choice, p.TS})
	}
	s.batches = append(s.batches, ws)
}

func (s *fakeSink) all() []written {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []written
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

func TestBatcherGroupCommit(t *testing.T) {
	sink := &fakeSink{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := NewBatcher(ctx, sink, BatcherConfig{Max: 64, Linger: 5 * time.Millisecond, Flushers: 1})
	const n = 500
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := b.Record(context.Background(), "v", "ab"[i%2]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	votes := sink.all()
	if len(votes) != n {
		t.Fatalf("%d votes written, want %d", len(votes), n)
	}
	sink.mu.Lock()
	batches := len(sink.batches)
	for _, bt := range sink.batches {
		if len(bt) > 64 {
			t.Errorf("batch of %d exceeds Max", len(bt))
		}
	}
	sink.mu.Unlock()
	if batches > n/4 {
		t.Errorf("%d writes for %d concurrent votes: not batching", batches, n)
	}
	seen := map[int64]bool{}
	for _, v := range votes {
		if v.TS == 0 || seen[v.TS] {
			t.Fatalf("timestamp %d missing or repeated", v.TS)
		}
		seen[v.TS] = true
	}
	t.Logf("%d votes in %d writes", n, batches)
}

// Record must not return before the write has finished.
func TestBatcherAnswersOnlyAfterWrite(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := NewBatcher(ctx, sink, BatcherConfig{Flushers: 1})
	var returned atomic.Bool
	done := make(chan error)
	go func() {
		err := b.Record(context.Background(), "v", 'a')
		returned.Store(true)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if returned.Load() {
		t.Fatal("Record returned while the write was still blocked")
	}
	sink.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBatcherPerVoteErrors(t *testing.T) {
	sink := &fakeSink{fail: func(p *Pending) error {
		if p.Voter == "bad" {
			return errors.New("nope")
		}
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := NewBatcher(ctx, sink, BatcherConfig{Linger: 2 * time.Millisecond})
	var wg sync.WaitGroup
	var good, bad atomic.Int32
	for i := range 100 {
		wg.Go(func() {
			voter := "good"
			if i%10 == 0 {
				voter = "bad"
			}
			err := b.Record(context.Background(), voter, 'a')
			if (err != nil) != (voter == "bad") {
				t.Errorf("voter %s: err %v", voter, err)
			}
			if err == nil {
				good.Add(1)
			} else {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if good.Load() != 90 || bad.Load() != 10 {
		t.Fatalf("good %d bad %d", good.Load(), bad.Load())
	}
}

// A caller that gives up before its vote is taken is told it was not
// recorded, and the vote is indeed never written.
func TestBatcherAbandoned(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := NewBatcher(ctx, sink, BatcherConfig{Flushers: 1, Max: 1})
	// The first vote occupies the only flusher.
	first := make(chan error)
	go func() { first <- b.Record(context.Background(), "first", 'a') }()
	time.Sleep(10 * time.Millisecond)
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer rcancel()
	if err := b.Record(rctx, "late", 'b'); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("abandoned vote: err %v", err)
	}
	close(sink.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// Give the flusher a chance to see (and drop) the abandoned vote.
	if err := b.Record(context.Background(), "after", 'a'); err != nil {
		t.Fatal(err)
	}
	for _, v := range sink.all() {
		if v.Voter == "late" {
			t.Fatal("abandoned vote was written")
		}
	}
}
