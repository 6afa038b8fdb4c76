// Package records keeps one kind of record (customer, product, invoice) in
// Redis with the seed's layout: a hash "<kind>:<id>" per record and a list
// "<kind>s" of ids, newest first. Every write is one MULTI/EXEC or one
// script, so a crash never leaves a record half-listed.
package records

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned by Get for an id that was never created.
var ErrNotFound = errors.New("no such record")

// Record is one stored record: field name to value, "id" included.
type Record map[string]string

// Store is what the services need from storage; Redis in production, Memory
// in unit tests.
type Store interface {
	// Create stores fields under a new id, lists it, and also lists it in
	// each index (e.g. the invoices of one customer); it returns the id.
	Create(ctx context.Context, fields Record, indexes ...string) (string, error)
	// Get returns one record or ErrNotFound.
	Get(ctx context.Context, id string) (Record, error)
	// List returns every record, newest first; with an index, only its records.
	List(ctx context.Context, index string) ([]Record, error)
	// Ping says whether storage answers.
	Ping(ctx context.Context) error
}

// Redis is a Store of one kind of record in one Redis.
type Redis struct {
	rdb  redis.UniversalClient
	kind string
}

// NewRedis stores records of kind ("customer") in rdb.
func NewRedis(rdb redis.UniversalClient, kind string) *Redis {
	return &Redis{rdb: rdb, kind: kind}
}

func (s *Redis) key(id string) string           { return s.kind + ":" + id }
func (s *Redis) list() string                   { return s.kind + "s" }
func (s *Redis) index(i string) string          { return s.list() + ":" + i }
func (s *Redis) seededMarker() string           { return s.list() + ":seeded" }
func (s *Redis) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Create implements Store.
func (s *Redis) Create(ctx context.Context, fields Record, indexes ...string) (string, error) {
	id := uuid.NewString()
	h := map[string]any{"id": id}
	for k, v := range fields {
		if k != "id" {
			h[k] = v
		}
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.key(id), h)
		p.LPush(ctx, s.list(), id)
		for _, i := range indexes {
			p.LPush(ctx, s.index(i), id)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("storing %s: %w", s.kind, err)
	}
	return id, nil
}

// Get implements Store.
func (s *Redis) Get(ctx context.Context, id string) (Record, error) {
	m, err := s.rdb.HGetAll(ctx, s.key(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", s.kind, id, err)
	}
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	return m, nil
}

// List implements Store.
func (s *Redis) List(ctx context.Context, index string) ([]Record, error) {
	list := s.list()
	if index != "" {
		list = s.index(index)
	}
	ids, err := s.rdb.LRange(ctx, list, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("listing %ss: %w", s.kind, err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.key(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %ss: %w", s.kind, err)
	}
	out := make([]Record, 0, len(ids))
	for _, c := range cmds {
		if m := c.Val(); len(m) > 0 {
			out = append(out, m)
		}
	}
	return out, nil
}

// seedScript stores a catalogue unless one was stored before, in one atomic
// step: replicas starting together race on it, and exactly one wins. A list
// that already has records (data from before the marker existed) counts as
// seeded. ARGV: id, field count, field, value, ... for each record.
var seedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], 'existing data')
  return 0
end
local i = 1
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i+1])
  i = i + 2
  local key = KEYS[3] .. id
  redis.call('HSET', key, 'id', id)
  for _ = 1, n do
    redis.call('HSET', key, ARGV[i], ARGV[i+1])
    i = i + 2
  end
  redis.call('RPUSH', KEYS[2], id)
end
redis.call('SET', KEYS[1], 'seeded')
return 1
`)

// SeedOnce stores recs (listed in this order) the first time it runs against
// this Redis, and never again: not after a restart, not from a second
// replica. It reports whether this call stored them.
func (s *Redis) SeedOnce(ctx context.Context, recs []Record) (bool, error) {
	var argv []any
	for _, r := range recs {
		argv = append(argv, uuid.NewString(), len(r)-boolInt(r["id"] != ""))
		for k, v := range r {
			if k != "id" {
				argv = append(argv, k, v)
			}
		}
	}
	n, err := seedScript.Run(ctx, s.rdb, []string{s.seededMarker(), s.list(), s.kind + ":"}, argv...).Int()
	if err != nil {
		return false, fmt.Errorf("seeding %ss: %w", s.kind, err)
	}
	return n == 1, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
