//go:build integration

// Package e2e runs the whole vote system in one process against real Redis
// and Postgres servers: two frontends (vote + Redis), a worker, results, and
// the load generator checking that the tally is exact.
package e2e

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/vote/internal/frontend"
	"github.com/swarmlab/swarmlab/app/vote/internal/results"
	"github.com/swarmlab/swarmlab/app/vote/internal/store"
	"github.com/swarmlab/swarmlab/app/vote/internal/testenv"
	"github.com/swarmlab/swarmlab/app/vote/internal/worker"
	"github.com/swarmlab/swarmlab/app/vote/loadgen"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type system struct {
	pg        store.Config
	redis     []*testenv.Redis
	voteURLs  []string
	resultURL string
}

func start(t *testing.T) *system {
	t.Helper()
	s := &system{pg: testenv.SharedPostgres(t)}
	if err := store.Init(context.Background(), s.pg, t.Logf); err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"frontend01", "frontend02"} {
		r := testenv.StartRedis(t)
		s.redis = append(s.redis, r)
		rdb := redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 20})
		ctx, cancel := context.WithCancel(context.Background())
		b := frontend.NewBatcher(ctx, frontend.RedisSink{Client: rdb}, frontend.BatcherConfig{Linger: time.Millisecond})
		srv := httptest.NewServer(frontend.NewServer(b, frontend.Config{OptionA: "Cats", OptionB: "Dogs", Node: node}).Handler())
		t.Cleanup(func() { srv.Close(); cancel(); b.Wait(); rdb.Close() })
		s.voteURLs = append(s.voteURLs, srv.URL)
	}
	db := results.NewDB(s.pg, 50*time.Millisecond)
	rs := httptest.NewServer((&results.Server{Src: db, OptionA: "Cats", OptionB: "Dogs"}).Handler())
	t.Cleanup(func() { rs.Close(); db.Close() })
	s.resultURL = rs.URL
	return s
}

func (s *system) worker(t *testing.T, name string, minIdle time.Duration) context.CancelFunc {
	var addrs []string
	for _, r := range s.redis {
		addrs = append(addrs, r.Addr)
	}
	w := worker.New(worker.Config{Redis: addrs, Consumer: name, Postgres: s.pg, Logf: t.Logf,
		ClaimMinIdle: minIdle, ClaimEvery: minIdle / 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func check(t *testing.T, rep loadgen.Report, votes int) {
	t.Helper()
	t.Logf("%d votes accepted at %.0f votes/s (p50 %.1f ms, p99 %.1f ms); counted %.2fs after the last reply",
		rep.Accepted, rep.VotesPerSec, rep.P50ms, rep.P99ms, rep.CountedAfter)
	t.Logf("expected %+v observed %+v; %d voters checked, lost %d, unexpected %d",
		rep.Expected, rep.Observed, rep.Checked, rep.Lost.Count, rep.Unexpected.Count)
	if rep.Accepted != votes || rep.Failed != 0 || rep.Rejected != 0 {
		t.Errorf("accepted %d of %d (failed %d, rejected %d: %v)", rep.Accepted, votes, rep.Failed, rep.Rejected, rep.Errors)
	}
	if err := rep.Verdict(); err != nil {
		t.Fatal(err)
	}
	if rep.Expected != rep.Observed || rep.Checked != rep.Voters {
		t.Fatalf("tally %+v, expected exactly %+v; %d of %d voters checked", rep.Observed, rep.Expected, rep.Checked, rep.Voters)
	}
}

// 20,000 votes by 8,000 voters, spread over both frontends so that a voter's
// successive votes land in different Redis instances: the tally must be
// exactly the voters' latest acknowledged votes.
func TestEndToEnd(t *testing.T) {
	s := start(t)
	s.worker(t, "worker-1", 30*time.Second)
	const votes = 20000
	rep, err := loadgen.Run(context.Background(), loadgen.Config{
		URLs: s.voteURLs, ResultsURL: s.resultURL,
		Votes: votes, Voters: 8000, Switch: 0.5, Concurrency: 128, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, rep, votes)
}

// The worker stops mid-run, leaving read but uncommitted batches behind; a
// second worker claims them. Nothing is lost or counted twice.
func TestEndToEndWorkerFailover(t *testing.T) {
	s := start(t)
	stopFirst := s.worker(t, "worker-1", time.Second)
	go func() {
		time.Sleep(500 * time.Millisecond)
		stopFirst()
		s.worker(t, "worker-2", time.Second)
	}()
	const votes = 20000
	rep, err := loadgen.Run(context.Background(), loadgen.Config{
		URLs: s.voteURLs, ResultsURL: s.resultURL,
		Votes: votes, Voters: 5000, Switch: 0.5, Concurrency: 128, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, rep, votes)
}
