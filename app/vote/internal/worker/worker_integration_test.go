//go:build integration

package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/vote/internal/ballot"
	"github.com/swarmlab/swarmlab/app/vote/internal/store"
	"github.com/swarmlab/swarmlab/app/vote/internal/testenv"
	"github.com/swarmlab/swarmlab/app/vote/internal/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// model is the tally the votes must produce: each voter's vote with the
// largest ts.
type model map[string]ballot.Vote

func (m model) add(v ballot.Vote) {
	if old, ok := m[v.Voter]; !ok || v.TS > old.TS {
		m[v.Voter] = v
	}
}

func (m model) tally() store.Tally {
	var t store.Tally
	for _, v := range m {
		if v.Choice == 'a' {
			t.A++
		} else {
			t.B++
		}
	}
	return t
}

// xadd writes votes as the vote service does.
func xadd(t testing.TB, rdb *redis.Client, m model, votes ...ballot.Vote) {
	t.Helper()
	ctx := context.Background()
	pipe := rdb.Pipeline()
	for _, v := range votes {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: ballot.Stream, Values: []string{
			ballot.FieldVoter, v.Voter, ballot.FieldVote, string(v.Choice), ballot.FieldTS, strconv.FormatInt(v.TS, 10)}})
		if m != nil {
			m.add(v)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// randomVotes makes n votes by the given voters with distinct timestamps.
func randomVotes(r *rand.Rand, n, voters int, prefix string) []ballot.Vote {
	out := make([]ballot.Vote, n)
	for i := range out {
		out[i] = ballot.Vote{
			Voter:  fmt.Sprintf("%s%d", prefix, r.IntN(voters)),
			Choice: "ab"[r.IntN(2)],
			TS:     ballot.Now(),
		}
	}
	return out
}

func startWorker(t *testing.T, cfg worker.Config) (*worker.Worker, context.CancelFunc) {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	w := worker.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return w, stop
}

func readTally(t testing.TB, cfg store.Config) store.Tally {
	t.Helper()
	ctx := context.Background()
	c, err := store.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	got, err := store.ReadTally(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func waitTally(t testing.TB, cfg store.Config, want store.Tally, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := readTally(t, cfg)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tally a=%d b=%d, want a=%d b=%d", got.A, got.B, want.A, want.B)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drained checks that nothing is left in the stream or pending.
func drained(t *testing.T, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := rdb.XLen(ctx, ballot.Stream).Result()
		p, err2 := rdb.XPending(ctx, ballot.Stream, ballot.Group).Result()
		if err == nil && err2 == nil && n == 0 && p.Count == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream not drained: len %d (%v), pending %+v (%v)", n, err, p, err2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func schema(t *testing.T) store.Config {
	t.Helper()
	cfg := testenv.SharedPostgres(t)
	if err := store.Init(context.Background(), cfg, t.Logf); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A voter's latest vote wins even when its votes sit in different Redis
// instances and are drained in the "wrong" order.
func TestLatestVoteWinsAcrossRedis(t *testing.T) {
	pg := schema(t)
	r1, r2 := testenv.StartRedis(t), testenv.StartRedis(t)
	c1, c2 := r1.Client(), r2.Client()
	defer c1.Close()
	defer c2.Close()
	m := model{}
	// x votes a on frontend 1, then b on frontend 2, then a again on 2.
	// y votes b on 2, then a on 1. z only votes once.
	x1 := ballot.Vote{Voter: "x", Choice: 'a', TS: ballot.Now()}
	y1 := ballot.Vote{Voter: "y", Choice: 'b', TS: ballot.Now()}
	x2 := ballot.Vote{Voter: "x", Choice: 'b', TS: ballot.Now()}
	x3 := ballot.Vote{Voter: "x", Choice: 'a', TS: ballot.Now()}
	y2 := ballot.Vote{Voter: "y", Choice: 'a', TS: ballot.Now()}
	z1 := ballot.Vote{Voter: "z", Choice: 'b', TS: ballot.Now()}
	xadd(t, c2, m, y1, x2, x3, z1)
	// Drain frontend 2 first, so frontend 1's older x vote arrives last.
	_, stop := startWorker(t, worker.Config{Redis: []string{r2.Addr}, Consumer: "w1", Postgres: pg})
	waitTally(t, pg, store.Tally{A: 1, B: 2}, 20*time.Second)
	stop()
	xadd(t, c1, m, x1, y2)
	startWorker(t, worker.Config{Redis: []string{r1.Addr, r2.Addr}, Consumer: "w2", Postgres: pg})
	want := m.tally() // x=a, y=a, z=b
	if want != (store.Tally{A: 2, B: 1}) {
		t.Fatalf("model %+v", want)
	}
	waitTally(t, pg, want, 20*time.Second)
	drained(t, c1)
	drained(t, c2)
}

// A worker that read a batch and died before committing it loses nothing:
// another worker claims the entries and counts them.
func TestWorkerDiesBeforeCommit(t *testing.T) {
	pg := schema(t)
	r := testenv.StartRedis(t)
	rdb := r.Client()
	defer rdb.Close()
	ctx := context.Background()
	m := model{}
	xadd(t, rdb, m, randomVotes(rand.New(rand.NewPCG(1, 1)), 500, 200, "v")...)
	if err := rdb.XGroupCreateMkStream(ctx, ballot.Stream, ballot.Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// The doomed worker reads 300 entries, which are now pending under its
	// name, and is never heard of again.
	got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: ballot.Group, Consumer: "doomed",
		Streams: []string{ballot.Stream, ">"}, Count: 300, Block: -1}).Result()
	if err != nil || len(got[0].Messages) != 300 {
		t.Fatalf("read %v %v", got, err)
	}
	w, _ := startWorker(t, worker.Config{Redis: []string{r.Addr}, Consumer: "survivor", Postgres: pg,
		ClaimMinIdle: 300 * time.Millisecond, ClaimEvery: 100 * time.Millisecond})
	waitTally(t, pg, m.tally(), 20*time.Second)
	drained(t, rdb)
	if s := w.Stats()[0]; s.Claimed < 300 {
		t.Fatalf("claimed %d entries, want >= 300 (stats %+v)", s.Claimed, s)
	}
}

// A worker that committed a batch but died before acknowledging it: the
// entries are delivered again, and counting them again changes nothing.
func TestRedeliveredVotesCountOnce(t *testing.T) {
	pg := schema(t)
	r := testenv.StartRedis(t)
	rdb := r.Client()
	defer rdb.Close()
	ctx := context.Background()
	m := model{}
	xadd(t, rdb, m, randomVotes(rand.New(rand.NewPCG(2, 2)), 400, 150, "v")...)
	rdb.XGroupCreateMkStream(ctx, ballot.Stream, ballot.Group, "0")
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: ballot.Group, Consumer: "doomed",
		Streams: []string{ballot.Stream, ">"}, Count: 1000, Block: -1}).Result()
	if err != nil {
		t.Fatal(err)
	}
	var votes []ballot.Vote
	for _, msg := range res[0].Messages {
		v, err := ballot.Parse(r.Addr, msg.ID, msg.Values)
		if err != nil {
			t.Fatal(err)
		}
		votes = append(votes, v)
	}
	c, err := store.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := store.Apply(ctx, c, votes); err != nil { // committed, never acked
		t.Fatal(err)
	}
	want := m.tally()
	if got := readTally(t, pg); got != want {
		t.Fatalf("after commit: %+v, want %+v", got, want)
	}
	// More votes arrive; then a worker claims the old ones and reads the new.
	more := randomVotes(rand.New(rand.NewPCG(3, 3)), 300, 300, "v")
	xadd(t, rdb, m, more...)
	w, _ := startWorker(t, worker.Config{Redis: []string{r.Addr}, Consumer: "survivor", Postgres: pg,
		ClaimMinIdle: 200 * time.Millisecond, ClaimEvery: 50 * time.Millisecond})
	drained(t, rdb)
	waitTally(t, pg, m.tally(), 20*time.Second)
	if s := w.Stats()[0]; s.Claimed < 400 {
		t.Fatalf("stats %+v: the committed entries were not redelivered", s)
	}
}

// One dead Redis must not stop the others; when it comes back, its votes
// (safe in its append-only file) are drained too.
func TestDeadRedisDoesNotBlockOthers(t *testing.T) {
	pg := schema(t)
	live, flaky := testenv.StartRedis(t), testenv.StartRedis(t)
	cl, cf := live.Client(), flaky.Client()
	defer cl.Close()
	defer cf.Close()
	neverUp := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	m := model{}
	r := rand.New(rand.NewPCG(4, 4))
	xadd(t, cf, m, randomVotes(r, 200, 100, "f")...)
	flaky.Kill() // dies with 200 unread votes
	w, _ := startWorker(t, worker.Config{Redis: []string{neverUp, flaky.Addr, live.Addr}, Consumer: "w", Postgres: pg})

	lm := model{}
	for range 5 {
		xadd(t, cl, lm, randomVotes(r, 100, 1000, "l")...)
		time.Sleep(50 * time.Millisecond)
	}
	waitTally(t, pg, lm.tally(), 20*time.Second) // live drained while two are dead
	for v := range lm {
		m.add(lm[v])
	}
	if err := flaky.Start(); err != nil {
		t.Fatal(err)
	}
	waitTally(t, pg, m.tally(), 30*time.Second) // back after reconnect backoff
	drained(t, cf)
	st := w.Stats()
	if st[0].Connected || st[0].LastError == "" {
		t.Errorf("never-up Redis reported as %+v", st[0])
	}
	if !st[2].Connected || st[2].Counted == 0 {
		t.Errorf("live Redis reported as %+v", st[2])
	}
}

// With discovery (tasks.redis:6379 in the stack) the worker follows the
// set of Redis instances as it grows and shrinks.
func TestDiscovery(t *testing.T) {
	pg := schema(t)
	port := testenv.FreePort()
	r2, r3 := testenv.StartRedisAt(t, "127.0.0.2", port), testenv.StartRedisAt(t, "127.0.0.3", port)
	c2, c3 := r2.Client(), r3.Client()
	defer c2.Close()
	defer c3.Close()
	var mu sync.Mutex
	ips := []string{"127.0.0.2"}
	setIPs := func(v ...string) { mu.Lock(); ips = v; mu.Unlock() }
	lookup := func(_ context.Context, host string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if host != "redis.test" {
			return nil, fmt.Errorf("unexpected lookup of %q", host)
		}
		return slices.Clone(ips), nil
	}
	w, _ := startWorker(t, worker.Config{Discover: "redis.test:" + strconv.Itoa(port), DiscoverEvery: 50 * time.Millisecond,
		Lookup: lookup, Consumer: "w", Postgres: pg})

	m2, all := model{}, model{}
	r := rand.New(rand.NewPCG(6, 6))
	v2, v3 := randomVotes(r, 300, 1000, "two-"), randomVotes(r, 300, 1000, "three-")
	xadd(t, c2, m2, v2...)
	xadd(t, c3, all, v3...)
	waitTally(t, pg, m2.tally(), 20*time.Second)
	if n, _ := c3.XLen(context.Background(), ballot.Stream).Result(); n != 300 {
		t.Fatalf("undiscovered Redis was drained (%d left)", n)
	}
	for _, v := range v2 {
		all.add(v)
	}
	setIPs("127.0.0.2", "127.0.0.3")
	waitTally(t, pg, all.tally(), 20*time.Second)
	drained(t, c3)

	setIPs("127.0.0.3")
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := w.Stats()
		if len(st) == 1 && st[0].Redis == r3.Addr {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats after 127.0.0.2 disappeared: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The real worker binary, killed with SIGKILL after it read a batch and
// before it could commit it, loses nothing and counts nothing twice: another
// worker claims what the dead one held and counts it.
//
// The window is made, not hoped for: the first worker reaches Postgres
// through a proxy that the test pauses once the first votes are counted, so
// every batch it reads after that is stuck in its commit. XPENDING must show
// that batch under its name when it is killed.
func TestKillWorkerProcess(t *testing.T) {
	bin := buildWorker(t)

	t.Run("survivor claims", func(t *testing.T) {
		k := killBetweenReadAndCommit(t, bin)
		sv := k.survivor(t, "-claim-min-idle", "500ms", "-claim-interval", "200ms")
		o, err := k.check(sv, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		waitTally(t, k.pg, k.want, time.Second)
		for _, c := range k.rdb {
			drained(t, c)
		}
		t.Logf("survivor claimed %d entries (%v per Redis), tally a=%d b=%d as the model", o.claimed, o.claimedPer, o.tally.A, o.tally.B)
	})

	// The check above must be able to fail: a survivor that never claims
	// (its entries must idle an hour first) leaves the dead worker's batch
	// pending and the tally short, and the check has to say so.
	t.Run("survivor that never claims is caught", func(t *testing.T) {
		k := killBetweenReadAndCommit(t, bin)
		sv := k.survivor(t, "-claim-min-idle", "1h", "-claim-interval", "200ms")
		o, err := k.check(sv, 3*time.Second)
		if err == nil {
			t.Fatalf("the check passed a survivor that claimed nothing: %+v", o)
		}
		if o.statsErr != nil || o.claimed != 0 || o.deadPending == 0 || o.tally == k.want {
			t.Fatalf("the check failed, but not for the reason it should: %v (%+v)", err, o)
		}
		t.Logf("the check failed as it should: %v", err)
	})
}

func buildWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/worker").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// killed is the state a killBetweenReadAndCommit leaves: the first worker
// (consumer "doomed") is dead, holding held entries it read and never
// counted; Postgres answers again.
type killed struct {
	bin   string
	pg    store.Config
	proxy *tcpProxy
	redis []*testenv.Redis
	rdb   []*redis.Client
	want  store.Tally // the model, over all votes
	held  int64       // entries pending under "doomed" when it was killed
}

const doomed = "doomed"

func killBetweenReadAndCommit(t *testing.T, bin string) *killed {
	t.Helper()
	ctx := context.Background()
	k := &killed{bin: bin, pg: schema(t)}
	k.proxy = startProxy(t, net.JoinHostPort(k.pg.Host, strconv.Itoa(k.pg.Port)))
	k.redis = []*testenv.Redis{testenv.StartRedis(t), testenv.StartRedis(t)}
	for _, r := range k.redis {
		c := r.Client()
		t.Cleanup(func() { c.Close() })
		k.rdb = append(k.rdb, c)
	}
	m := model{}
	rnd := rand.New(rand.NewPCG(5, 5))
	for _, c := range k.rdb {
		xadd(t, c, m, randomVotes(rnd, 2000, 4000, "v")...)
	}
	first, firstHTTP := k.start(t, doomed, "-claim-min-idle", "500ms", "-claim-interval", "200ms")
	// The first worker is up and counting: everything so far is in.
	waitTally(t, k.pg, m.tally(), 30*time.Second)
	for _, c := range k.rdb {
		drained(t, c)
	}
	before := m.tally()

	// Postgres stops answering; the next votes are read, and stuck. They
	// arrive at once (MULTI), so the first read takes a full batch.
	k.proxy.Pause()
	for _, c := range k.rdb {
		xaddTx(t, c, m, randomVotes(rnd, 3000, 4000, "v")...)
	}
	k.want = m.tally()
	held := make([]int64, len(k.rdb))
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		for i, c := range k.rdb {
			if held[i], err = pendingFor(ctx, c, doomed); err != nil {
				break
			}
		}
		if err == nil && !slices.Contains(held, 0) {
			break
		}
		if time.Now().After(deadline) {
			break // the check below says what was seen
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, stErr := healthz(firstHTTP)
	first.Process.Kill()
	first.Wait()
	// Pending is read again after the kill: what counts is what the dead
	// worker left behind.
	for i, c := range k.rdb {
		n, err := pendingFor(ctx, c, doomed)
		if err != nil {
			t.Fatalf("XPENDING on %s after the kill: %v", k.redis[i].Addr, err)
		}
		held[i] = n
		k.held += n
	}
	if slices.Contains(held, 0) {
		t.Fatalf("killed the first worker with %v entries pending under %q per Redis (its stats %+v, %v): "+
			"it held nothing read and uncommitted on every Redis, so the kill tested nothing", held, doomed, st, stErr)
	}
	if got := readTally(t, k.pg); got != before {
		t.Fatalf("tally a=%d b=%d after the kill, want a=%d b=%d: the held batch reached Postgres", got.A, got.B, before.A, before.B)
	}
	t.Logf("killed %q holding %v entries per Redis, read and uncommitted (its stats: %+v)", doomed, held, st)

	// Postgres is back. The dead worker's connections die with it, as its
	// unsent transactions do.
	k.proxy.Sever()
	k.proxy.Resume()
	return k
}

// xaddTx is xadd in one MULTI: a reader waiting on the stream sees all of
// the votes at once.
func xaddTx(t testing.TB, rdb *redis.Client, m model, votes ...ballot.Vote) {
	t.Helper()
	ctx := context.Background()
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, v := range votes {
			p.XAdd(ctx, &redis.XAddArgs{Stream: ballot.Stream, Values: []string{
				ballot.FieldVoter, v.Voter, ballot.FieldVote, string(v.Choice), ballot.FieldTS, strconv.FormatInt(v.TS, 10)}})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range votes {
		m.add(v)
	}
}

// start runs the worker binary as consumer, draining both Redis through the
// proxy, and returns it and its /healthz address.
func (k *killed) start(t *testing.T, consumer string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort()))
	args = append([]string{"-http", httpAddr, "-consumer", consumer, "-read-count", "200"}, args...)
	cmd := exec.Command(k.bin, args...)
	cmd.Env = append(os.Environ(),
		"REDIS_ADDRS="+k.redis[0].Addr+","+k.redis[1].Addr,
		"POSTGRES_HOST="+k.proxy.Host(), "POSTGRES_PORT="+strconv.Itoa(k.proxy.Port()),
		"POSTGRES_USER="+k.pg.User, "POSTGRES_DB="+k.pg.Database,
		"POSTGRES_PASSWORD_FILE="+k.pg.PasswordFile)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, httpAddr
}

// survivor starts the worker that is to take over, and returns how to read
// its stats.
func (k *killed) survivor(t *testing.T, args ...string) func() ([]worker.Stats, error) {
	t.Helper()
	_, addr := k.start(t, "survivor", args...)
	return func() ([]worker.Stats, error) { return healthz(addr) }
}

// takeover is what the check saw last.
type takeover struct {
	tally       store.Tally
	left        []int64 // entries in each stream
	pending     []int64 // of them, pending under any consumer
	deadPending int64   // pending under the dead worker, all streams
	claimed     int64   // by the survivor, all streams
	claimedPer  []int64
	statsErr    error
}

// check waits up to within for the survivor to have taken over: it claimed
// at least what the dead worker held, the tally is the model's, and nothing
// is left in the streams or pending. Otherwise it returns what is wrong.
func (k *killed) check(stats func() ([]worker.Stats, error), within time.Duration) (takeover, error) {
	deadline := time.Now().Add(within)
	for {
		o, err := k.observe(stats)
		if err == nil {
			err = o.problem(k.want, k.held)
		}
		if err == nil || time.Now().After(deadline) {
			return o, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (k *killed) observe(stats func() ([]worker.Stats, error)) (takeover, error) {
	ctx := context.Background()
	var o takeover
	c, err := store.Connect(ctx, k.pg)
	if err != nil {
		return o, err
	}
	o.tally, err = store.ReadTally(ctx, c)
	c.Close(ctx)
	if err != nil {
		return o, err
	}
	for _, rdb := range k.rdb {
		n, err := rdb.XLen(ctx, ballot.Stream).Result()
		if err != nil {
			return o, err
		}
		p, err := rdb.XPending(ctx, ballot.Stream, ballot.Group).Result()
		if err != nil {
			return o, err
		}
		o.left = append(o.left, n)
		o.pending = append(o.pending, p.Count)
		o.deadPending += p.Consumers[doomed]
	}
	st, err := stats()
	o.statsErr = err
	for _, s := range st {
		o.claimed += s.Claimed
		o.claimedPer = append(o.claimedPer, s.Claimed)
	}
	return o, nil
}

func (o takeover) problem(want store.Tally, held int64) error {
	var errs []string
	if o.statsErr != nil {
		errs = append(errs, fmt.Sprintf("survivor stats: %v", o.statsErr))
	} else if o.claimed < held {
		errs = append(errs, fmt.Sprintf("the survivor claimed %d entries, the dead worker held %d", o.claimed, held))
	}
	if o.tally != want {
		errs = append(errs, fmt.Sprintf("tally a=%d b=%d, want a=%d b=%d", o.tally.A, o.tally.B, want.A, want.B))
	}
	if o.deadPending > 0 {
		errs = append(errs, fmt.Sprintf("%d entries still pending under %q", o.deadPending, doomed))
	}
	for i := range o.left {
		if o.left[i] > 0 || o.pending[i] > 0 {
			errs = append(errs, fmt.Sprintf("stream %d: %d entries left, %d pending", i, o.left[i], o.pending[i]))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

// pendingFor is how many entries consumer has read and not acknowledged.
func pendingFor(ctx context.Context, rdb *redis.Client, consumer string) (int64, error) {
	p, err := rdb.XPending(ctx, ballot.Stream, ballot.Group).Result()
	if err != nil {
		return 0, err
	}
	return p.Consumers[consumer], nil
}

// healthz reads a worker process's stats.
func healthz(addr string) ([]worker.Stats, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	var st []worker.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return st, nil
}

// BenchmarkWorkerDrain measures how fast one worker moves votes from two
// Redis streams into Postgres: b.N votes by distinct voters are queued first,
// then the clock runs until all are counted.
func BenchmarkWorkerDrain(b *testing.B) {
	pg := testenv.SharedPostgres(b)
	if err := store.Init(context.Background(), pg, b.Logf); err != nil {
		b.Fatal(err)
	}
	rs := []*testenv.Redis{testenv.StartRedis(b), testenv.StartRedis(b)}
	for i := 0; i < b.N; i += 1000 {
		votes := make([]ballot.Vote, 0, 1000)
		for j := i; j < min(i+1000, b.N); j++ {
			votes = append(votes, ballot.Vote{Voter: fmt.Sprintf("voter-%d", j), Choice: "ab"[j%2], TS: ballot.Now()})
		}
		c := rs[(i/1000)%2].Client()
		xadd(b, c, nil, votes...)
		c.Close()
	}
	b.ResetTimer()
	start := time.Now()
	w := worker.New(worker.Config{Redis: []string{rs[0].Addr, rs[1].Addr}, Consumer: "bench", Postgres: pg, Logf: b.Logf})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	want := store.Tally{A: int64((b.N + 1) / 2), B: int64(b.N / 2)}
	waitTally(b, pg, want, 10*time.Minute)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "votes/s")
}
