//go:build integration

package gate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/crud/internal/testenv"
)

// sentinelSessions are sessions on a real master with replicas, reached as
// the gate does: redis.NewFailoverClient through Sentinel.
func sentinelSessions(t *testing.T, r *testenv.RedisHA) *RedisSessions {
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: testenv.MasterName, SentinelAddrs: r.Sentinels,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: time.Second,
	})
	t.Cleanup(func() { rdb.Close() })
	return &RedisSessions{Client: rdb, Replicas: 1, WaitTimeout: 300 * time.Millisecond, TTL: time.Hour}
}

func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSessionsOnAReplicatedRedis(t *testing.T) {
	r := testenv.StartRedisHA(t, 1)
	s := sentinelSessions(t, r)
	id, err := s.Create(bg(t))
	if err != nil {
		t.Fatal(err)
	}
	for want := int64(1); want <= 3; want++ {
		if n, err := s.Touch(bg(t), id); err != nil || n != want {
			t.Fatalf("Touch: %d %v, want %d", n, err, want)
		}
	}
	if _, err := s.Touch(bg(t), NewSessionID()); !errors.Is(err, ErrNoSession) {
		t.Errorf("unknown session: %v", err)
	}
	// The replica has it: WAIT said so.
	rep := redis.NewClient(&redis.Options{Addr: r.Servers[1]})
	defer rep.Close()
	if v, err := rep.HGet(bg(t), "session:"+id, "requests").Result(); err != nil || v != "3" {
		t.Errorf("replica: requests=%q %v, want 3", v, err)
	}
}

func TestNoReplicaMeansNotReplicated(t *testing.T) {
	r := testenv.StartRedisHA(t, 1)
	s := sentinelSessions(t, r)
	id, err := s.Create(bg(t))
	if err != nil {
		t.Fatal(err)
	}
	r.Kill(1)
	if _, err := s.Touch(bg(t), id); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("Touch with the replica gone: %v, want ErrNotReplicated", err)
	}
	if _, err := s.Create(bg(t)); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("Create with the replica gone: %v, want ErrNotReplicated", err)
	}
	r.Restart(t, 1)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := s.Touch(bg(t), id)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Touch once the replica is back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Sessions acknowledged before the master is killed are all there, with
// their counts, once Sentinel has promoted a replica.
func TestAFailoverLosesNoAcknowledgedSession(t *testing.T) {
	r := testenv.StartRedisHA(t, 2)
	s := sentinelSessions(t, r)
	counts := map[string]int64{}
	for i := range 20 {
		id, err := s.Create(bg(t))
		if err != nil {
			t.Fatal(err)
		}
		for range i % 4 {
			if _, err := s.Touch(bg(t), id); err != nil {
				t.Fatal(err)
			}
		}
		counts[id] = int64(i % 4)
	}
	old := r.Master(t)
	r.Kill(r.Index(old))
	start := time.Now()
	var first error
	for id, n := range counts {
		for {
			got, err := s.Touch(bg(t), id)
			if err == nil {
				if got != n+1 {
					t.Errorf("session %s: count %d after the failover, want %d", id, got, n+1)
				}
				break
			}
			if errors.Is(err, ErrNoSession) {
				t.Fatalf("session %s lost in the failover", id)
			}
			if first == nil {
				first = err
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("no new master within 30 s: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if now := r.Master(t); now == old {
		t.Errorf("master still %s", now)
	}
	t.Logf("failover from %s to %s: every session answered again %v after the kill (first error meanwhile: %v)", old, r.Master(t), time.Since(start).Round(time.Millisecond), first)
}
