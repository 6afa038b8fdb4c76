package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name Sentinel knows the master by.
const MasterName = "sessions"

// RedisHA is a Redis master with replicas and one Sentinel (quorum 1) that
// fails over a second after the master stops answering.
type RedisHA struct {
	// Servers are the Redis servers, host:port; Servers[0] started as the
	// master (after a failover another one is).
	Servers   []string
	Sentinels []string
	procs     []*proc
	sentinel  *proc
	dir       string
}

// StartRedisHA starts a master, replicas replicas and a Sentinel, stopped
// when the test ends.
func StartRedisHA(tb testing.TB, replicas int) *RedisHA {
	tb.Helper()
	need(tb, "redis-server redis-sentinel", "redis-server", "redis-sentinel")
	dir, err := tempDir("crud-redis-")
	if err != nil {
		tb.Fatal(err)
	}
	r := &RedisHA{dir: dir}
	tb.Cleanup(r.stop)
	ports := make([]int, replicas+1)
	for i := range ports {
		ports[i] = FreePort(tb)
	}
	for i, port := range ports {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		d := filepath.Join(dir, "redis"+strconv.Itoa(i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
		args := []string{"redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", d,
			"--save", "", "--appendonly", "no", "--protected-mode", "no"}
		if i > 0 {
			args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
		}
		p := &proc{name: "redis " + addr, args: args}
		if err := p.start(); err != nil {
			tb.Fatal(err)
		}
		r.Servers, r.procs = append(r.Servers, addr), append(r.procs, p)
	}
	if err := waitFor(20*time.Second, "redis master with its replicas", func() error {
		return r.replicasOnline(ports[0], replicas)
	}); err != nil {
		tb.Fatalf("%v\n%s", err, r.procs[0].tail())
	}

	sport := FreePort(tb)
	conf := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
dir %s
sentinel monitor %s 127.0.0.1 %d 1
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 5000
sentinel parallel-syncs %s 2
`, sport, dir, MasterName, ports[0], MasterName, MasterName, MasterName)), 0o644); err != nil {
		tb.Fatal(err)
	}
	r.sentinel = &proc{name: "sentinel", args: []string{"redis-sentinel", conf}}
	if err := r.sentinel.start(); err != nil {
		tb.Fatal(err)
	}
	saddr := "127.0.0.1:" + strconv.Itoa(sport)
	r.Sentinels = []string{saddr}
	if err := waitFor(20*time.Second, "sentinel knows the master and its replicas", func() error {
		s := redis.NewSentinelClient(&redis.Options{Addr: saddr})
		defer s.Close()
		ctx := context.Background()
		if _, err := s.GetMasterAddrByName(ctx, MasterName).Result(); err != nil {
			return err
		}
		reps, err := s.Replicas(ctx, MasterName).Result()
		if err != nil {
			return err
		}
		if len(reps) < replicas {
			return fmt.Errorf("%d replicas known", len(reps))
		}
		return nil
	}); err != nil {
		tb.Fatalf("%v\n%s", err, r.sentinel.tail())
	}
	// A replica listed online can still be settling its link (seen under
	// load: the first WAIT after start answered 0 for a few seconds). The
	// tests hold the sessions' WAIT to account, so the fixture is ready
	// only once a write on the master is acknowledged by every replica.
	if err := waitFor(20*time.Second, "a write on the master acknowledged by every replica (WAIT)", func() error {
		return r.acknowledged(ports[0], replicas)
	}); err != nil {
		tb.Fatalf("%v\n%s", err, r.procs[0].tail())
	}
	return r
}

func (r *RedisHA) acknowledged(port, want int) error {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "swarmlab:testenv:ready", time.Now().UnixNano(), 0).Err(); err != nil {
		return err
	}
	n, err := c.Do(ctx, "WAIT", want, 1000).Int()
	if err != nil {
		return err
	}
	if n < want {
		return fmt.Errorf("WAIT %d 1000 answered %d", want, n)
	}
	return nil
}

func (r *RedisHA) replicasOnline(port, want int) error {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer c.Close()
	info, err := c.Info(context.Background(), "replication").Result()
	if err != nil {
		return err
	}
	var n int
	for i := range want {
		if containsLine(info, "slave"+strconv.Itoa(i)+":", "state=online") {
			n++
		}
	}
	if n < want {
		return fmt.Errorf("%d of %d replicas online", n, want)
	}
	return nil
}

// Master asks Sentinel which server is the master now.
func (r *RedisHA) Master(tb testing.TB) string {
	tb.Helper()
	s := redis.NewSentinelClient(&redis.Options{Addr: r.Sentinels[0]})
	defer s.Close()
	a, err := s.GetMasterAddrByName(context.Background(), MasterName).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return a[0] + ":" + a[1]
}

// Kill stops server i at once, as a lost node does.
func (r *RedisHA) Kill(i int) { r.procs[i].kill() }

// Restart starts server i again, on its port, with its first arguments
// (Sentinel turns an old master into a replica of the new one).
func (r *RedisHA) Restart(tb testing.TB, i int) {
	tb.Helper()
	if err := r.procs[i].start(); err != nil {
		tb.Fatal(err)
	}
}

// Index is the position of a server address in Servers.
func (r *RedisHA) Index(addr string) int {
	for i, a := range r.Servers {
		if a == addr {
			return i
		}
	}
	return -1
}

func (r *RedisHA) stop() {
	if r.sentinel != nil {
		r.sentinel.kill()
	}
	for _, p := range r.procs {
		p.kill()
	}
	os.RemoveAll(r.dir)
}

func containsLine(text, prefix, sub string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
