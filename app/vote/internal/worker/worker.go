// Package worker moves votes from every frontend Redis into Postgres without
// losing or double-counting any: an entry is acknowledged in Redis only after
// the transaction counting it has committed, and counting is idempotent, so
// whatever is redelivered after a crash changes nothing.
package worker

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/vote/internal/ballot"
	"github.com/swarmlab/swarmlab/app/vote/internal/store"
)

// Config for one worker process. Zero durations and counts get defaults.
type Config struct {
	// Redis lists frontend Redis addresses (host:port). Discover names one
	// more (host:port, e.g. tasks.redis:6379) whose every address is drained,
	// resolved with Lookup (net.DefaultResolver.LookupHost) every
	// DiscoverEvery (5s).
	Redis         []string
	Discover      string
	DiscoverEvery time.Duration
	Lookup        func(ctx context.Context, host string) ([]string, error)

	Consumer     string        // unique per worker process
	Count        int           // entries per read, and per transaction (1000)
	Block        time.Duration // how long a read waits for new entries (200ms)
	Linger       time.Duration // after a short read, wait this long so the next batch is bigger (0)
	ClaimMinIdle time.Duration // take over entries another consumer has held this long (30s)
	ClaimEvery   time.Duration // how often to look for such entries (5s)

	Postgres store.Config
	Logf     func(format string, args ...any) // default log.Printf
}

func (c *Config) defaults() {
	if c.Count <= 0 {
		c.Count = 1000
	}
	if c.Block <= 0 {
		c.Block = 200 * time.Millisecond
	}
	if c.ClaimMinIdle <= 0 {
		c.ClaimMinIdle = 30 * time.Second
	}
	if c.ClaimEvery <= 0 {
		c.ClaimEvery = 5 * time.Second
	}
	if c.DiscoverEvery <= 0 {
		c.DiscoverEvery = 5 * time.Second
	}
	if c.Lookup == nil {
		c.Lookup = net.DefaultResolver.LookupHost
	}
	if c.Logf == nil {
		c.Logf = log.Printf
	}
}

// Worker drains all configured (and discovered) Redis instances.
type Worker struct {
	cfg Config
	wg  sync.WaitGroup

	mu       sync.Mutex
	drainers []*drainer // in the order they were started
}

// New prepares a worker; Run starts it.
func New(cfg Config) *Worker {
	cfg.defaults()
	return &Worker{cfg: cfg}
}

// Run drains every Redis in its own goroutine, so an idle, slow or dead one
// never holds up the others, until ctx is done.
func (w *Worker) Run(ctx context.Context) {
	for _, addr := range w.cfg.Redis {
		w.start(ctx, addr)
	}
	if w.cfg.Discover != "" {
		w.discover(ctx)
	}
	<-ctx.Done()
	w.wg.Wait()
}

func (w *Worker) start(ctx context.Context, addr string) {
	ctx, cancel := context.WithCancel(ctx)
	d := &drainer{
		cfg:    &w.cfg,
		addr:   addr,
		cancel: cancel,
		rdb: redis.NewClient(&redis.Options{
			Addr:        addr,
			DialTimeout: 2 * time.Second,
			ReadTimeout: 5 * time.Second, // added to BLOCK for blocking reads
			// A transparently retried read could hide a lost reply whose
			// entries then sit in our pending list; surface every error
			// instead so the session restarts and re-reads them.
			MaxRetries: -1,
			PoolSize:   2,
		}),
		pg: store.NewConn(w.cfg.Postgres),
	}
	w.mu.Lock()
	w.drainers = append(w.drainers, d)
	w.mu.Unlock()
	w.wg.Go(func() {
		d.run(ctx)
		d.rdb.Close()
		d.pg.Reset()
	})
}

// discover keeps one drainer per address that Discover ("host:port")
// resolves to, e.g. tasks.redis:6379 on Docker's DNS. A drainer whose address
// disappears is stopped; whatever it had read but not acknowledged stays
// pending in that Redis and is taken up again when it reappears.
func (w *Worker) discover(ctx context.Context) {
	host, port, err := net.SplitHostPort(w.cfg.Discover)
	if err != nil {
		w.cfg.Logf("worker: discover %q: %v", w.cfg.Discover, err)
		return
	}
	tick := time.NewTicker(w.cfg.DiscoverEvery)
	defer tick.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := w.cfg.Lookup(lctx, host)
		cancel()
		if err != nil && ctx.Err() == nil {
			w.cfg.Logf("worker: discover %s: %v", host, err)
		} else if err == nil {
			w.sync(ctx, ips, port)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

func (w *Worker) sync(ctx context.Context, ips []string, port string) {
	want := map[string]bool{}
	for _, a := range w.cfg.Redis {
		want[a] = true // configured addresses are never dropped
	}
	var added []string
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, port)
		if !want[addr] {
			added = append(added, addr)
		}
		want[addr] = true
	}
	w.mu.Lock()
	have := map[string]bool{}
	kept := w.drainers[:0]
	for _, d := range w.drainers {
		if want[d.addr] {
			kept = append(kept, d)
			have[d.addr] = true
		} else {
			w.cfg.Logf("worker: redis %s no longer discovered; stopping", d.addr)
			d.cancel()
		}
	}
	w.drainers = kept
	w.mu.Unlock()
	for _, addr := range added {
		if !have[addr] {
			w.cfg.Logf("worker: redis %s discovered", addr)
			w.start(ctx, addr)
		}
	}
}

// Stats is what one drainer has done so far.
type Stats struct {
	Redis     string `json:"redis"`
	Connected bool   `json:"connected"`
	Read      int64  `json:"read"`    // entries delivered to us (incl. redeliveries)
	Claimed   int64  `json:"claimed"` // entries taken over from other consumers
	Counted   int64  `json:"counted"` // votes committed to Postgres
	Acked     int64  `json:"acked"`
	Bad       int64  `json:"bad"` // malformed entries, dropped
	LastError string `json:"last_error,omitempty"`
}

// Stats reports on the running drainers, in the order they were started.
func (w *Worker) Stats() []Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Stats, len(w.drainers))
	for i, d := range w.drainers {
		out[i] = Stats{
			Redis: d.addr, Connected: d.connected.Load(),
			Read: d.read.Load(), Claimed: d.claimed.Load(), Counted: d.counted.Load(),
			Acked: d.acked.Load(), Bad: d.bad.Load(),
		}
		if e, ok := d.lastErr.Load().(string); ok {
			out[i].LastError = e
		}
	}
	return out
}

type drainer struct {
	cfg       *Config
	addr      string
	cancel    context.CancelFunc
	rdb       *redis.Client
	pg        *store.Conn // used only by this drainer's goroutine
	lastClaim time.Time

	connected                          atomic.Bool
	read, claimed, counted, acked, bad atomic.Int64
	lastErr                            atomic.Value
}

func (d *drainer) run(ctx context.Context) {
	backoff := newBackoff()
	for ctx.Err() == nil {
		progressed, err := d.session(ctx)
		d.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff.reset()
		}
		d.lastErr.Store(err.Error())
		wait := backoff.next()
		d.cfg.Logf("worker: redis %s: %v (retrying in %v)", d.addr, err, wait)
		sleep(ctx, wait)
	}
}

// session drains until an error; every session starts from what this
// consumer already holds, so nothing read before a failure is left behind.
func (d *drainer) session(ctx context.Context) (progressed bool, err error) {
	err = d.rdb.XGroupCreateMkStream(ctx, ballot.Stream, ballot.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return false, err
	}
	d.connected.Store(true)
	if err := d.drainOwn(ctx); err != nil {
		return false, err
	}
	for {
		if time.Since(d.lastClaim) >= d.cfg.ClaimEvery {
			if err := d.claim(ctx); err != nil {
				return true, err
			}
			d.lastClaim = time.Now()
		}
		res, err := d.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: ballot.Group, Consumer: d.cfg.Consumer,
			Streams: []string{ballot.Stream, ">"},
			Count:   int64(d.cfg.Count), Block: d.cfg.Block,
		}).Result()
		if err == redis.Nil {
			continue // nothing new within Block
		}
		if err != nil {
			return true, err
		}
		n := 0
		for _, s := range res {
			n += len(s.Messages)
			d.read.Add(int64(len(s.Messages)))
			if err := d.process(ctx, s.Messages); err != nil {
				return true, err
			}
		}
		progressed = true
		if n < d.cfg.Count && d.cfg.Linger > 0 {
			// Under a steady trickle, fewer and bigger transactions cost
			// Postgres far less than one per handful of votes.
			sleep(ctx, d.cfg.Linger)
		}
	}
}

// drainOwn processes entries already delivered to this consumer but never
// acknowledged, e.g. because Postgres or Redis failed in between.
func (d *drainer) drainOwn(ctx context.Context) error {
	start := "0"
	for {
		res, err := d.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: ballot.Group, Consumer: d.cfg.Consumer,
			Streams: []string{ballot.Stream, start},
			Count:   int64(d.cfg.Count), Block: -1,
		}).Result()
		if err == redis.Nil {
			return nil
		}
		if err != nil {
			return err
		}
		if len(res) == 0 || len(res[0].Messages) == 0 {
			return nil
		}
		msgs := res[0].Messages
		d.read.Add(int64(len(msgs)))
		if err := d.process(ctx, msgs); err != nil {
			return err
		}
		start = msgs[len(msgs)-1].ID
	}
}

// claim takes over entries that some consumer (a crashed worker, or this one
// before a restart) read but has not acknowledged for ClaimMinIdle.
func (d *drainer) claim(ctx context.Context) error {
	start := "0-0"
	for {
		msgs, next, err := d.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: ballot.Stream, Group: ballot.Group, Consumer: d.cfg.Consumer,
			MinIdle: d.cfg.ClaimMinIdle, Start: start, Count: int64(d.cfg.Count),
		}).Result()
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			d.claimed.Add(int64(len(msgs)))
			d.cfg.Logf("worker: redis %s: claimed %d idle entries", d.addr, len(msgs))
			if err := d.process(ctx, msgs); err != nil {
				return err
			}
		}
		if next == "0-0" {
			return nil
		}
		start = next
	}
}

// process counts a batch in Postgres and only then acknowledges it. A crash
// anywhere before the acknowledgement leaves the entries pending, to be
// redelivered and counted again, which changes nothing (store.Apply).
func (d *drainer) process(ctx context.Context, msgs []redis.XMessage) error {
	votes := make([]ballot.Vote, 0, len(msgs))
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, m.ID)
		if m.Values == nil {
			continue // deleted while pending: already counted by someone
		}
		v, err := ballot.Parse(d.addr, m.ID, m.Values)
		if err != nil {
			// Retrying cannot fix a malformed entry; acknowledge and drop it.
			d.bad.Add(1)
			d.cfg.Logf("worker: redis %s: dropping entry %s: %v", d.addr, m.ID, err)
			continue
		}
		votes = append(votes, v)
	}
	if err := d.commit(ctx, votes); err != nil {
		return err
	}
	d.counted.Add(int64(len(votes)))
	// XACK and XDEL together (MULTI), so acknowledged entries never linger in
	// the stream and the stream does not grow without bound.
	_, err := d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, ballot.Stream, ballot.Group, ids...)
		p.XDel(ctx, ballot.Stream, ids...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	d.acked.Add(int64(len(ids)))
	return nil
}

// commit retries until the votes are counted or ctx ends. Holding on to the
// batch (rather than dropping the Redis session) keeps the entries ours while
// Postgres is away; if this worker dies meanwhile, another claims them.
func (d *drainer) commit(ctx context.Context, votes []ballot.Vote) error {
	if len(votes) == 0 {
		return nil
	}
	backoff := newBackoff()
	for {
		c, err := d.pg.Get(ctx)
		if err == nil {
			err = store.Apply(ctx, c, votes)
		}
		if err == nil {
			return nil
		}
		d.pg.Reset()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.lastErr.Store("postgres: " + err.Error())
		wait := backoff.next()
		d.cfg.Logf("worker: postgres: %v (retrying in %v)", err, wait)
		sleep(ctx, wait)
	}
}

type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 50 * time.Millisecond} }
func (b *backoff) reset()  { b.d = 50 * time.Millisecond }
func (b *backoff) next() time.Duration {
	d := b.d
	b.d = min(2*b.d, 5*time.Second)
	return d
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
