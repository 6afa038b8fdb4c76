package gate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sessions keeps the sessions and their request counters.
type Sessions interface {
	// Create makes a session, with 0 requests.
	Create(ctx context.Context) (string, error)
	// Touch counts one more request of session id and returns the count:
	// ErrNoSession if there is no such session.
	Touch(ctx context.Context, id string) (int64, error)
	// Ping reports whether sessions can be read.
	Ping(ctx context.Context) error
}

var (
	// ErrNoSession is an unknown (or expired) session: a 401.
	ErrNoSession = errors.New("no such session")
	// ErrNotReplicated is a session write that no replica acknowledged in
	// time: it may be lost in a failover, so it is not acknowledged (a 503).
	ErrNotReplicated = errors.New("session write not acknowledged by a replica")
)

// NewSessionID returns 128 random bits in hex.
func NewSessionID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ValidSessionID is the shape NewSessionID makes; anything else is not
// looked up.
func ValidSessionID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// RedisSessions keeps sessions in Redis, a hash per session (requests,
// created), and acknowledges a write only once Replicas replicas have it
// (WAIT), so that a Sentinel failover to a replica loses no acknowledged
// session or count.
type RedisSessions struct {
	// Client is the master: redis.NewFailoverClient's in the service.
	Client redis.Cmdable
	// Replicas is how many replicas must have each write (WAIT's first
	// argument). 0 skips WAIT: a Redis with no replica, for development.
	Replicas int
	// WaitTimeout is WAIT's timeout. The client's read timeout must be
	// longer.
	WaitTimeout time.Duration
	// TTL is how long a session lives after its last request.
	TTL time.Duration
}

// createScript makes a session; touchScript counts a request of an existing
// one (HINCRBY alone would make a missing session exist again). Scripts
// replicate their effects, and run on the one connection that the WAIT
// after them runs on.
var (
	createScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'requests', 0, 'created', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0`)
	touchScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n`)
)

func sessionKey(id string) string { return "session:" + id }

func (s *RedisSessions) Create(ctx context.Context) (string, error) {
	id := NewSessionID()
	_, err := s.write(ctx, createScript, id, time.Now().UnixMilli())
	return id, err
}

func (s *RedisSessions) Touch(ctx context.Context, id string) (int64, error) {
	n, err := s.write(ctx, touchScript, id)
	if err == nil && n < 0 {
		return 0, ErrNoSession
	}
	return n, err
}

// write runs a script and, in the same pipeline (so on the same connection,
// which is what WAIT counts from), WAIT for the replicas.
func (s *RedisSessions) write(ctx context.Context, script *redis.Script, id string, args ...any) (int64, error) {
	argv := append([]any{s.TTL.Milliseconds()}, args...)
	pipe := s.Client.Pipeline()
	// EVAL, not EVALSHA: a replica promoted by a failover has no script
	// cache, and a pipeline cannot fall back by itself.
	res := script.Eval(ctx, pipe, []string{sessionKey(id)}, argv...)
	var wait *redis.Cmd
	if s.Replicas > 0 {
		wait = pipe.Do(ctx, "WAIT", s.Replicas, s.WaitTimeout.Milliseconds())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("redis: %w", err)
	}
	n, err := res.Int64()
	if err != nil {
		return 0, fmt.Errorf("redis: %w", err)
	}
	if n < 0 { // no such session: nothing was written
		return n, nil
	}
	if wait != nil {
		acked, err := wait.Int64()
		if err != nil {
			return 0, fmt.Errorf("redis: WAIT: %w", err)
		}
		if acked < int64(s.Replicas) {
			return 0, fmt.Errorf("%w: WAIT %d %d answered %d", ErrNotReplicated, s.Replicas, s.WaitTimeout.Milliseconds(), acked)
		}
	}
	return n, nil
}

// Ping reports whether the master answers.
func (s *RedisSessions) Ping(ctx context.Context) error {
	return s.Client.Ping(ctx).Err()
}
