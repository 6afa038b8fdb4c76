//go:build integration

package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/swarmlab/swarmlab/app/vote/internal/ballot"
	"github.com/swarmlab/swarmlab/app/vote/internal/store"
	"github.com/swarmlab/swarmlab/app/vote/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func setup(t *testing.T) (store.Config, *pgx.Conn) {
	t.Helper()
	cfg := testenv.SharedPostgres(t)
	ctx := context.Background()
	c, err := store.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	if err := store.EnsureSchema(ctx, c); err != nil {
		t.Fatal(err)
	}
	return cfg, c
}

func apply(t *testing.T, c *pgx.Conn, votes ...ballot.Vote) {
	t.Helper()
	if err := store.Apply(context.Background(), c, votes); err != nil {
		t.Fatal(err)
	}
}

func wantTally(t *testing.T, c *pgx.Conn, a, b int64) {
	t.Helper()
	got, err := store.ReadTally(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got != (store.Tally{A: a, B: b}) {
		t.Fatalf("tally a=%d b=%d, want a=%d b=%d", got.A, got.B, a, b)
	}
}

func vote(voter string, choice byte, ts int64, src, id string) ballot.Vote {
	return ballot.Vote{Voter: voter, Choice: choice, TS: ts, Source: src, StreamID: id}
}

func TestLatestWinsAndRedeliveryIsNoOp(t *testing.T) {
	_, c := setup(t)
	v1 := vote("x", 'a', 100, "r1", "1-0")
	v2 := vote("x", 'b', 200, "r2", "1-0") // later, from another frontend
	y := vote("y", 'a', 150, "r1", "2-0")

	apply(t, c, v1, y)
	wantTally(t, c, 2, 0)
	apply(t, c, v1, y) // redelivered
	wantTally(t, c, 2, 0)
	apply(t, c, v2)
	wantTally(t, c, 1, 1)
	apply(t, c, v1) // the older vote arrives again, late
	wantTally(t, c, 1, 1)
	apply(t, c, v2, v1, y) // all at once, any order
	wantTally(t, c, 1, 1)
	apply(t, c, vote("x", 'b', 300, "r1", "3-0")) // same choice again: no change
	wantTally(t, c, 1, 1)

	// Exact ties on ts are broken by stream id (numerically), then source.
	apply(t, c, vote("z", 'a', 500, "r1", "9-0"), vote("z", 'b', 500, "r1", "10-0"))
	wantTally(t, c, 1, 2)
	apply(t, c, vote("z", 'a', 500, "r1", "9-0"))
	wantTally(t, c, 1, 2)
	apply(t, c, vote("z", 'a', 500, "r2", "10-0"))
	wantTally(t, c, 2, 1)

	var choice, prev string
	if err := c.QueryRow(context.Background(),
		"SELECT vote, coalesce(prev_vote, '') FROM votes WHERE voter_id = 'x'").Scan(&choice, &prev); err != nil {
		t.Fatal(err)
	}
	if choice != "b" {
		t.Fatalf("x's vote is %q", choice)
	}
}

// ReadVoter answers what the votes table counts for one voter: the latest
// vote after a change of mind, and none for a voter never seen.
func TestReadVoter(t *testing.T) {
	_, c := setup(t)
	ctx := context.Background()
	want := func(voter string, choice byte) {
		t.Helper()
		got, err := store.ReadVoter(ctx, c, voter)
		if err != nil {
			t.Fatal(err)
		}
		if got != choice {
			t.Fatalf("voter %s: counted %q, want %q", voter, got, choice)
		}
	}
	want("x", 0)
	apply(t, c, vote("x", 'a', 100, "r1", "1-0"))
	want("x", 'a')
	apply(t, c, vote("x", 'b', 200, "r1", "2-0"))
	want("x", 'b')
	apply(t, c, vote("x", 'a', 150, "r2", "1-0")) // older: ignored
	want("x", 'b')
	want("y", 0)
}

// Many writers apply overlapping, redelivered, shuffled batches at once; the
// result must equal a sequential model, and the tally must equal a recount.
func TestConcurrentApplyMatchesModel(t *testing.T) {
	cfg, c := setup(t)
	r := rand.New(rand.NewPCG(1, 2))
	const voters, votes = 300, 6000
	var all []ballot.Vote
	for i := range votes {
		src := fmt.Sprintf("redis-%d", r.IntN(3))
		all = append(all, vote(fmt.Sprintf("v%d", r.IntN(voters)), "ab"[r.IntN(2)],
			int64(1000+r.IntN(votes/2)), // frequent ts ties
			src, fmt.Sprintf("%d-%d", 1+r.IntN(5), i)))
	}
	model := map[string]ballot.Vote{}
	for _, v := range all {
		if m, ok := model[v.Voter]; !ok || ballot.Later(v, m) {
			model[v.Voter] = v
		}
	}
	var wantA, wantB int64
	for _, v := range model {
		if v.Choice == 'a' {
			wantA++
		} else {
			wantB++
		}
	}

	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			ctx := context.Background()
			conn, err := store.Connect(ctx, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(ctx)
			r := rand.New(rand.NewPCG(uint64(w), 7))
			// Each writer delivers everything once, shuffled, in random
			// batch sizes: every vote is thus redelivered 5 times.
			mine := append([]ballot.Vote(nil), all...)
			r.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
			for len(mine) > 0 {
				n := min(len(mine), 1+r.IntN(400))
				if err := store.Apply(ctx, conn, mine[:n]); err != nil {
					t.Error(err)
					return
				}
				mine = mine[n:]
			}
		})
	}
	wg.Wait()
	wantTally(t, c, wantA, wantB)

	rows, _ := c.Query(context.Background(), "SELECT voter_id, vote, ts, source, stream_id FROM votes")
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ballot.Vote, error) {
		var v ballot.Vote
		var choice string
		err := row.Scan(&v.Voter, &choice, &v.TS, &v.Source, &v.StreamID)
		v.Choice = choice[0]
		return v, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(model) {
		t.Fatalf("%d voters stored, want %d", len(got), len(model))
	}
	for _, v := range got {
		if m := model[v.Voter]; m != v {
			t.Fatalf("voter %s: stored %+v, want %+v", v.Voter, v, m)
		}
	}
}

func TestSchemaConcurrentInit(t *testing.T) {
	cfg := testenv.SharedPostgres(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := store.Init(context.Background(), cfg, t.Logf); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	c, err := store.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	wantTally(t, c, 0, 0)
}

func TestPasswordFromFile(t *testing.T) {
	cfg := testenv.SharedPostgres(t)
	wrong := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(wrong, []byte("not-the-password\n"), 0o600)
	bad := cfg
	bad.PasswordFile = wrong
	if c, err := store.Connect(context.Background(), bad); err == nil {
		c.Close(context.Background())
		t.Fatal("connected with the wrong password")
	}
	bad.PasswordFile = ""
	if c, err := store.Connect(context.Background(), bad); err == nil {
		c.Close(context.Background())
		t.Fatal("connected without a password")
	}
}
