//go:build integration

package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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

// The real worker binary, killed with SIGKILL in the middle of draining,
// loses nothing and counts nothing twice once another worker takes over.
func TestKillWorkerProcess(t *testing.T) {
	pg := schema(t)
	r1, r2 := testenv.StartRedis(t), testenv.StartRedis(t)
	c1, c2 := r1.Client(), r2.Client()
	defer c1.Close()
	defer c2.Close()
	m := model{}
	rnd := rand.New(rand.NewPCG(5, 5))
	for range 20 {
		xadd(t, c1, m, randomVotes(rnd, 1000, 8000, "v")...)
		xadd(t, c2, m, randomVotes(rnd, 1000, 8000, "v")...)
	}

	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/worker").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	run := func() *exec.Cmd {
		cmd := exec.Command(bin, "-http", "", "-read-count", "200", "-claim-min-idle", "500ms", "-claim-interval", "200ms")
		cmd.Env = append(os.Environ(),
			"REDIS_ADDRS="+r1.Addr+","+r2.Addr,
			"POSTGRES_HOST="+pg.Host, "POSTGRES_PORT="+strconv.Itoa(pg.Port),
			"POSTGRES_USER="+pg.User, "POSTGRES_DB="+pg.Database,
			"POSTGRES_PASSWORD_FILE="+pg.PasswordFile)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := run()
	want := m.tally()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := readTally(t, pg)
		if got.A+got.B > 0 {
			break // it is mid-drain: kill it now
		}
		if time.Now().After(deadline) {
			t.Fatal("first worker counted nothing")
		}
		time.Sleep(time.Millisecond)
	}
	first.Process.Kill()
	first.Wait()
	got := readTally(t, pg)
	t.Logf("killed first worker with %d of %d voters counted", got.A+got.B, want.A+want.B)
	if got == want {
		t.Log("(the first worker had already finished; the kill tested nothing)")
	}
	second := run()
	defer func() { second.Process.Kill(); second.Wait() }()
	waitTally(t, pg, want, 30*time.Second)
	drained(t, c1)
	drained(t, c2)
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
