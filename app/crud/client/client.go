// Package client is the CRUD app's load driver for the e2e specs: sessions
// that put, get and delete items on a small key space through the edge,
// recording every item operation into a history (package history), and
// checking, once stopped, what the app promises:
//   - the history is linearizable (porcupine, per key);
//   - every acknowledged write is readable with its latest value (read back
//     key by key, as Jepsen's set-full checker does with its elements);
//   - no session is lost (no 401) and each session's request counter only
//     grows;
//   - and, per fault window, how many requests failed (Report.Between).
//
// Each session is one goroutine with its own http.Client and cookie jar, so
// its operations are sequential and its requests may reach any gate.
//
// A spec drives it so:
//
//	d, err := client.Start(ctx, client.Config{BaseURL: edge})
//	// ... the fault from t0, recovered at t1 ...
//	rep := d.Stop()
//	Expect(rep.Verdict()).To(Succeed())
//	Expect(rep.FailedBetween(t0, t1, 2)).To(Succeed())
//	Expect(rep.FailedBetween(t1, time.Now(), 0)).To(Succeed())
//
// Benchmarks read rep.Bench: reads and writes per second, and their p50
// and p99, over the same run; Rate 0 sends as fast as the app answers, and
// PutShare and DeleteShare set the mix (a read-heavy one: 0.05 and -1; a
// write-only one: 1 and -1).
package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmlab/swarmlab/app/crud/history"
)

// Defaults for the zero values of Config.
const (
	DefaultSessions       = 8
	DefaultKeys           = 8
	DefaultPutShare       = 0.45
	DefaultDeleteShare    = 0.05
	DefaultRequestTimeout = 2 * time.Second
	DefaultProbeEvery     = 10
	DefaultFinalTimeout   = 30 * time.Second
	DefaultStartTimeout   = time.Minute
)

// Config for a run. Zero values get the defaults above.
type Config struct {
	BaseURL  string // the edge, http://host[:port]
	Sessions int    // concurrent sessions
	Keys     int    // size of the key space
	// KeyPrefix starts every key (default random, so runs never share keys).
	KeyPrefix string
	// PutShare and DeleteShare are the shares of item operations that are
	// puts and deletes; the rest are gets. Negative: none.
	PutShare, DeleteShare float64
	// Rate is item operations per second over all sessions; 0: as fast as
	// they are answered.
	Rate float64
	// RequestTimeout bounds each request; a request sent and not answered
	// by then is unknown in the history.
	RequestTimeout time.Duration
	// SlowAfter: an answer slower than this counts as failed in the windows
	// (default RequestTimeout), though the history keeps what it said.
	SlowAfter time.Duration
	// ProbeEvery: GET /session after every n item operations, and right
	// after each login.
	ProbeEvery int
	// StartTimeout bounds Start's wait for each session's login: right
	// after a deploy the edge may not route to a gate yet.
	StartTimeout time.Duration
	// FinalTimeout bounds reading every key back once stopped.
	FinalTimeout time.Duration
	// CheckTimeout bounds the linearizability check (default
	// history.DefaultTimeout); a check that runs out is inconclusive.
	CheckTimeout time.Duration
	// VisualizePath, if set, receives porcupine's HTML visualization of the
	// history (of the non-linearizable keys only, if any).
	VisualizePath string
	Seed          uint64 // workload seed (default random)
}

func (cfg *Config) defaults() error {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("client: base URL %q: want http://host[:port]", cfg.BaseURL)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Sessions, DefaultSessions)
	def(&cfg.Keys, DefaultKeys)
	def(&cfg.ProbeEvery, DefaultProbeEvery)
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&cfg.RequestTimeout, DefaultRequestTimeout)
	defDur(&cfg.SlowAfter, cfg.RequestTimeout)
	defDur(&cfg.FinalTimeout, DefaultFinalTimeout)
	defDur(&cfg.StartTimeout, DefaultStartTimeout)
	defDur(&cfg.CheckTimeout, history.DefaultTimeout)
	share := func(v *float64, d float64) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	share(&cfg.PutShare, DefaultPutShare)
	share(&cfg.DeleteShare, DefaultDeleteShare)
	if cfg.PutShare+cfg.DeleteShare > 1 {
		return fmt.Errorf("client: put share %.2f and delete share %.2f leave no room for gets", cfg.PutShare, cfg.DeleteShare)
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = fmt.Sprintf("crud-%08x-", rand.Uint32())
	}
	return nil
}

// key is the key space's ith key.
func (cfg *Config) key(i int) string { return cfg.KeyPrefix + "k" + strconv.Itoa(i) }

// Driver is a run under way; Stop ends it and checks it.
type Driver struct {
	cfg      Config
	h        *history.History
	ctx      context.Context
	stop     chan struct{}
	wg       sync.WaitGroup
	sessions []*session
	slot     atomic.Int64 // for pacing at cfg.Rate
	stopOnce sync.Once
	report   Report
}

// Start logs every session in (POST /session, waiting up to StartTimeout
// for the app to answer) and starts their load. ctx bounds the whole run,
// Stop's checks included.
func Start(ctx context.Context, cfg Config) (*Driver, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d := &Driver{cfg: cfg, h: history.New(), ctx: ctx, stop: make(chan struct{})}
	for i := range cfg.Sessions {
		s := d.newSession(i)
		if err := s.loginWaiting(ctx, cfg.StartTimeout); err != nil {
			return nil, fmt.Errorf("starting session %d of %d: %w", i+1, cfg.Sessions, err)
		}
		d.sessions = append(d.sessions, s)
	}
	for _, s := range d.sessions {
		d.wg.Go(func() { d.load(s) })
	}
	return d, nil
}

// History is the run's history, growing while it runs.
func (d *Driver) History() *history.History { return d.h }

// Started is when the run's clock started (the history's).
func (d *Driver) Started() time.Time { return d.h.Start() }

// stopped reports whether Stop was called or the run's context ended.
func (d *Driver) stopped() bool {
	select {
	case <-d.stop:
		return true
	case <-d.ctx.Done():
		return true
	default:
		return false
	}
}

// load is one session's loop of item operations and probes.
func (d *Driver) load(s *session) {
	var interval time.Duration
	if d.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / d.cfg.Rate)
	}
	for n := 1; !d.stopped(); n++ {
		if interval > 0 {
			due := d.h.Start().Add(time.Duration(d.slot.Add(1)-1) * interval)
			if !d.sleep(time.Until(due)) {
				return
			}
		}
		if !s.loggedIn {
			if s.login(d.ctx) != nil && !d.sleep(50*time.Millisecond) {
				return
			}
			continue
		}
		if n%d.cfg.ProbeEvery == 0 {
			s.probe(d.ctx)
			continue
		}
		k := d.cfg.key(s.rng.IntN(d.cfg.Keys))
		switch r := s.rng.Float64(); {
		case r < d.cfg.PutShare:
			s.seq++
			s.put(d.ctx, k, fmt.Sprintf("s%d-%d", s.client, s.seq))
		case r < d.cfg.PutShare+d.cfg.DeleteShare:
			s.del(d.ctx, k)
		default:
			s.get(d.ctx, k)
		}
	}
}

// sleep waits for dt or until the run stops; false if it stopped.
func (d *Driver) sleep(dt time.Duration) bool {
	if dt <= 0 {
		return !d.stopped()
	}
	t := time.NewTimer(dt)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-d.stop:
		return false
	case <-d.ctx.Done():
		return false
	}
}

// ErrInconclusive is what Report.Verdict wraps when nothing was found
// wrong but too little was proven.
var ErrInconclusive = errors.New("inconclusive")

// Stop ends the load, waits for the requests in flight, reads every key
// back, checks the history, and reports. Calling it again returns the same
// report.
func (d *Driver) Stop() Report {
	d.stopOnce.Do(func() {
		close(d.stop)
		d.wg.Wait()
		d.report = d.finish()
	})
	return d.report
}

func (d *Driver) finish() Report {
	cfg := d.cfg
	rep := Report{Started: d.h.Start(), Sessions: cfg.Sessions, Keys: cfg.Keys, KeyPrefix: cfg.KeyPrefix}
	rep.SendSeconds = time.Since(d.h.Start()).Seconds()
	loadOps := d.h.Ops()

	reader := d.newSession(cfg.Sessions) // a client of its own: the others' sessions may be lost
	reads := reader.readBack(d.ctx, cfg.FinalTimeout)
	listed, listErr := reader.list(d.ctx)
	rep.Final = finalCheck(loadOps, reads, d.keys(), listed, listErr)

	ops := d.h.Ops()
	rep.Ops = len(ops)
	rep.History = ops
	rep.Linearizability = history.Check(ops, history.Options{Timeout: cfg.CheckTimeout, VisualizePath: cfg.VisualizePath})
	rep.Bench = history.Bench(loadOps)

	for _, s := range append(slices.Clone(d.sessions), reader) {
		rep.addSession(s)
	}
	slices.SortStableFunc(rep.log, func(a, b event) int { return cmp.Compare(a.sent, b.sent) })
	rep.Result = "pass"
	if err := rep.Verdict(); err != nil {
		rep.Result = err.Error()
	}
	return rep
}

func (d *Driver) keys() []string {
	ks := make([]string, d.cfg.Keys)
	for i := range ks {
		ks[i] = d.cfg.key(i)
	}
	return ks
}
