//go:build integration

package frontend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/vote/internal/ballot"
	"github.com/swarmlab/swarmlab/app/vote/internal/svc"
	"github.com/swarmlab/swarmlab/app/vote/internal/testenv"
)

// startVote runs a vote server in front of r, as cmd/vote does.
func startVote(tb testing.TB, r *testenv.Redis, cfg BatcherConfig) (*httptest.Server, *redis.Client) {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 16, DialTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	b := NewBatcher(ctx, RedisSink{Client: rdb}, cfg)
	srv := httptest.NewServer(NewServer(b, Config{OptionA: "Cats", OptionB: "Dogs", Node: "test",
		Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}).Handler())
	tb.Cleanup(func() { srv.Close(); cancel(); b.Wait(); rdb.Close() })
	return srv, rdb
}

func postVote(c *http.Client, url, body string) (int, error) {
	resp, err := c.Post(url+"/api/vote", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Every acknowledged vote survives Redis being killed right afterwards.
func TestAcknowledgedVotesSurviveRedisCrash(t *testing.T) {
	r := testenv.StartRedis(t)
	if ok, err := CheckDurable(context.Background(), r.Client()); !ok || err != nil {
		t.Fatalf("test Redis not durable: %v %v", ok, err)
	}
	srv, _ := startVote(t, r, BatcherConfig{Linger: time.Millisecond, Timeout: time.Second})
	var acked sync.Map
	var n atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 100000 {
				id := fmt.Sprintf("g%d-%d", g, i)
				code, err := postVote(srv.Client(), srv.URL, `{"vote":"a","voter_id":"`+id+`"}`)
				if err != nil || code != http.StatusAccepted {
					return // Redis is gone
				}
				acked.Store(id, true)
				n.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	r.Kill() // mid-stream: some votes acknowledged, some failed
	wg.Wait()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	c := r.Client()
	defer c.Close()
	msgs, err := c.XRange(context.Background(), ballot.Stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, m := range msgs {
		stored[m.Values[ballot.FieldVoter].(string)] = true
	}
	missing := 0
	acked.Range(func(k, _ any) bool {
		if !stored[k.(string)] {
			missing++
		}
		return true
	})
	t.Logf("%d acknowledged before the kill, %d entries after restart", n.Load(), len(msgs))
	if n.Load() == 0 {
		t.Fatal("nothing was acknowledged")
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged votes lost in the crash", missing)
	}
}

func TestStreamEntryFormat(t *testing.T) {
	r := testenv.StartRedis(t)
	srv, rdb := startVote(t, r, BatcherConfig{})
	before := ballot.Now()
	if code, err := postVote(srv.Client(), srv.URL, `{"vote":"b","voter_id":"someone"}`); err != nil || code != 202 {
		t.Fatalf("%d %v", code, err)
	}
	msgs, _ := rdb.XRange(context.Background(), ballot.Stream, "-", "+").Result()
	if len(msgs) != 1 {
		t.Fatalf("%d entries", len(msgs))
	}
	v, err := ballot.Parse("r", msgs[0].ID, msgs[0].Values)
	if err != nil || v.Voter != "someone" || v.Choice != 'b' || v.TS <= before || v.TS > ballot.Now() {
		t.Fatalf("entry %v parsed as %+v, %v", msgs[0].Values, v, err)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	r := testenv.StartRedis(t)
	srv, rdb := startVote(t, r, BatcherConfig{})
	for body, want := range map[string]int{
		`{"vote":"c"}`:                  400,
		`{"vote":"a","voter_id":"<x>"}`: 400,
		`not json`:                      400,
		`{"vote":"a","x":"` + strings.Repeat("x", 5000) + `"}`: 413,
	} {
		if code, err := postVote(srv.Client(), srv.URL, body); err != nil || code != want {
			t.Errorf("%.40q: %d %v, want %d", body, code, err, want)
		}
	}
	// A huge chunked body is cut off, not buffered.
	req, _ := http.NewRequest("POST", srv.URL+"/api/vote", io.MultiReader(
		strings.NewReader(`{"vote":"a","pad":"`), bytes.NewReader(make([]byte, 8<<20))))
	resp, err := srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("chunked 8 MiB: %d", resp.StatusCode)
		}
	}
	if n, _ := rdb.XLen(context.Background(), ballot.Stream).Result(); n != 0 {
		t.Fatalf("%d entries written for bad input", n)
	}
}

// With Redis gone, votes fail with 503 (never 2xx) and health says so.
func TestRedisDownMeans503(t *testing.T) {
	r := testenv.StartRedis(t)
	srv, _ := startVote(t, r, BatcherConfig{Timeout: time.Second})
	r.Kill()
	if code, err := postVote(srv.Client(), srv.URL, `{"vote":"a","voter_id":"x"}`); err != nil || code != 503 {
		t.Fatalf("vote with Redis down: %d %v", code, err)
	}
	resp, err := srv.Client().Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("healthz with Redis down: %v %v", resp, err)
	}
	resp.Body.Close()
}

// The stack runs vote and Redis on one node, talking over a Unix socket on
// their shared volume.
func TestVoteOverUnixSocket(t *testing.T) {
	r := testenv.StartRedis(t)
	opts, err := svc.RedisOptions("unix://" + r.Socket)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if ok, err := CheckDurable(ctx, rdb); !ok || err != nil {
		t.Fatalf("CheckDurable over the socket: %v %v", ok, err)
	}
	b := NewBatcher(ctx, RedisSink{Client: rdb}, BatcherConfig{})
	if err := b.Record(ctx, "unix-voter", 'a'); err != nil {
		t.Fatal(err)
	}
	tcp := r.Client()
	defer tcp.Close()
	if n, _ := tcp.XLen(ctx, ballot.Stream).Result(); n != 1 {
		t.Fatalf("%d entries", n)
	}
}

func TestCheckDurable(t *testing.T) {
	r := testenv.StartRedis(t)
	c := r.Client()
	defer c.Close()
	ctx := context.Background()
	if ok, err := CheckDurable(ctx, c); !ok || err != nil {
		t.Fatalf("durable Redis rejected: %v %v", ok, err)
	}
	c.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru")
	if _, err := CheckDurable(ctx, c); err == nil {
		t.Error("evicting Redis accepted")
	}
	c.ConfigSet(ctx, "maxmemory-policy", "noeviction")
	c.ConfigSet(ctx, "appendfsync", "everysec")
	if _, err := CheckDurable(ctx, c); err == nil {
		t.Error("appendfsync everysec accepted")
	}
}

// BenchmarkVoteHandler measures the vote path without the network: handler,
// batcher, and a real Redis fsyncing every batch.
func BenchmarkVoteHandler(b *testing.B) {
	r := testenv.StartRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bt := NewBatcher(ctx, RedisSink{Client: rdb}, BatcherConfig{Linger: time.Millisecond})
	h := NewServer(bt, Config{Node: "bench"}).Handler()
	body := []byte(`{"vote":"a","voter_id":"0123456789abcdef0123456789abcdef"}`)
	b.SetParallelism(128) // x GOMAXPROCS: 256 requests in flight, like loadgen -concurrency 256
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/api/vote", bytes.NewReader(body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 202 {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "votes/s")
}
