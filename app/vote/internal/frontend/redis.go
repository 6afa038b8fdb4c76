package frontend

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/vote/internal/ballot"
)

// RedisSink appends votes to the frontend's Redis stream, all of a batch in
// one pipeline. With appendfsync always, Redis replies only after the AOF is
// fsynced, and it fsyncs once per event-loop turn, so a whole pipeline costs
// about one fsync.
type RedisSink struct{ Client *redis.Client }

var choiceText = [256]string{'a': "a", 'b': "b"}

func (s RedisSink) Write(ctx context.Context, batch []*Pending) {
	// No MAXLEN: trimming here could drop votes no worker has read yet.
	// Workers delete entries once they are counted.
	cmds, err := s.Client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, p := range batch {
			pipe.XAdd(ctx, &redis.XAddArgs{
				Stream: ballot.Stream,
				Values: []string{
					ballot.FieldVoter, p.Voter,
					ballot.FieldVote, choiceText[p.Choice],
					ballot.FieldTS, strconv.FormatInt(p.TS, 10),
				},
			})
		}
		return nil
	})
	if len(cmds) != len(batch) {
		if err == nil {
			err = fmt.Errorf("pipeline returned %d replies for %d votes", len(cmds), len(batch))
		}
		for _, p := range batch {
			p.Err = err
		}
		return
	}
	for i, c := range cmds {
		batch[i].Err = c.Err()
	}
}

// CheckDurable verifies that Redis acknowledges a write only after fsync,
// which is what makes a 2xx from the vote service a promise, and that it
// never evicts keys to make room (a full Redis must refuse votes, not drop
// the stream). It returns an error if Redis says otherwise; if CONFIG is
// disabled it cannot tell and returns ok=false, err=nil.
func CheckDurable(ctx context.Context, rdb *redis.Client) (ok bool, err error) {
	cfg, err := rdb.ConfigGet(ctx, "*").Result()
	if err != nil {
		return false, nil
	}
	if cfg["appendonly"] != "yes" || cfg["appendfsync"] != "always" {
		return false, fmt.Errorf("redis has appendonly=%q appendfsync=%q; acknowledged votes could be lost (want yes/always)",
			cfg["appendonly"], cfg["appendfsync"])
	}
	if p := cfg["maxmemory-policy"]; p != "noeviction" {
		return false, fmt.Errorf("redis has maxmemory-policy=%q; it could evict unprocessed votes (want noeviction)", p)
	}
	return true, nil
}
