// Package store keeps the counted votes in Postgres: one row per voter with
// that voter's latest vote, plus a running tally so reading results never
// rescans the votes.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/swarmlab/swarmlab/app/vote/internal/ballot"
)

// Config says where Postgres is. The password only ever comes from a file
// (a swarm secret), never from the environment or the command line.
type Config struct {
	Host         string
	Port         int
	User         string
	Database     string
	SSLMode      string
	PasswordFile string
}

func (c Config) connConfig() (*pgx.ConnConfig, error) {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(c.User),
		Host:     net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Path:     "/" + c.Database,
		RawQuery: url.Values{"sslmode": {c.SSLMode}, "connect_timeout": {"5"}}.Encode(),
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, err
	}
	cfg.Password = ""
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("postgres password: %w", err)
		}
		cfg.Password = strings.TrimRight(string(b), "\r\n")
	}
	return cfg, nil
}

// Connect opens one connection.
func Connect(ctx context.Context, c Config) (*pgx.Conn, error) {
	cfg, err := c.connConfig()
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// Conn is one connection that is (re)opened on demand. After any error the
// caller calls Reset: the session's state is then unknown, and a fresh
// connection is cheap compared to reasoning about it. Not safe for
// concurrent use.
type Conn struct {
	cfg Config
	c   *pgx.Conn
}

func NewConn(cfg Config) *Conn { return &Conn{cfg: cfg} }

func (s *Conn) Get(ctx context.Context) (*pgx.Conn, error) {
	if s.c != nil && !s.c.IsClosed() {
		return s.c, nil
	}
	c, err := Connect(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	s.c = c
	return c, nil
}

func (s *Conn) Reset() {
	if s.c != nil {
		s.c.Close(context.Background())
		s.c = nil
	}
}

// Advisory lock keys ("vote" in ASCII, plus one).
const (
	schemaLock = 0x766f7465
	applyLock  = 0x766f7466
)

const schemaSQL = `
CREATE TABLE IF NOT EXISTS votes (
    voter_id   text COLLATE "C" PRIMARY KEY,
    vote       char(1) NOT NULL CHECK (vote IN ('a', 'b')),
    prev_vote  char(1),          -- the vote this row replaced; see applySQL
    ts         bigint NOT NULL,  -- acceptance time at the vote service, Unix ns
    source     text COLLATE "C" NOT NULL,
    stream_id  text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tally (
    option char(1) PRIMARY KEY CHECK (option IN ('a', 'b')),
    n      bigint NOT NULL
);
INSERT INTO tally VALUES ('a', 0), ('b', 0) ON CONFLICT DO NOTHING;
`

// EnsureSchema creates the tables if needed. Several workers and results
// services may start at once; CREATE TABLE IF NOT EXISTS is not safe against
// itself in concurrent sessions, so they take turns under an advisory lock.
func EnsureSchema(ctx context.Context, c *pgx.Conn) error {
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schemaSQL)
		return err
	})
}

// applySQL upserts a batch (at most one row per voter) and moves the tally
// by the net change, in one statement.
//
// A row is replaced only by a strictly later vote in the order of
// ballot.Later: (ts, stream id ms, stream id seq, source). A redelivered vote
// compares equal and an older one compares lower, so both change nothing.
//
// prev_vote exists for RETURNING: Postgres before 18 cannot return the old
// row, so the update stores the vote it replaces. Because ON CONFLICT locks
// and reads the latest committed row, prev_vote is exact even if another
// transaction changed the row meanwhile. prev_vote IS NULL in a returned row
// means it was inserted (a new voter: +1); otherwise a changed vote is -1/+1
// and a repeated one 0.
const applySQL = `
WITH b AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])
        AS b(voter_id, vote, ts, source, stream_id)
), changed AS (
    INSERT INTO votes AS v (voter_id, vote, prev_vote, ts, source, stream_id)
    SELECT voter_id, vote, NULL, ts, source, stream_id FROM b ORDER BY voter_id
    ON CONFLICT (voter_id) DO UPDATE
    SET vote = excluded.vote, prev_vote = v.vote, ts = excluded.ts,
        source = excluded.source, stream_id = excluded.stream_id, updated_at = now()
    WHERE (excluded.ts,
           split_part(excluded.stream_id, '-', 1)::numeric,
           split_part(excluded.stream_id, '-', 2)::numeric,
           excluded.source)
        > (v.ts,
           split_part(v.stream_id, '-', 1)::numeric,
           split_part(v.stream_id, '-', 2)::numeric,
           v.source)
    RETURNING v.vote, v.prev_vote
), delta(option, d) AS (
    SELECT vote, 1 FROM changed WHERE prev_vote IS DISTINCT FROM vote
    UNION ALL
    SELECT prev_vote, -1 FROM changed WHERE prev_vote <> vote
)
UPDATE tally t SET n = t.n + s.d
FROM (SELECT option, sum(d) AS d FROM delta GROUP BY option) s
WHERE t.option = s.option AND s.d <> 0
`

// Apply counts a batch of votes in one transaction. It is idempotent: applying
// the same votes again, in any order or split, leaves votes and tally as they
// were, which is what makes redelivery from Redis harmless.
func Apply(ctx context.Context, c *pgx.Conn, votes []ballot.Vote) error {
	votes = latestPerVoter(votes)
	if len(votes) == 0 {
		return nil
	}
	n := len(votes)
	voters, choices, sources, ids := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ts := make([]int64, n)
	for i, v := range votes {
		voters[i], choices[i], ts[i], sources[i], ids[i] = v.Voter, string(v.Choice), v.TS, v.Source, v.StreamID
	}
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		// Every batch updates the same two tally rows, so batches serialize
		// on them anyway; taking one lock first makes that explicit and rules
		// out deadlocks between batches that lock voters or tally rows in
		// different orders.
		b := &pgx.Batch{}
		b.Queue("SELECT pg_advisory_xact_lock($1)", int64(applyLock))
		b.Queue(applySQL, voters, choices, ts, sources, ids)
		return tx.SendBatch(ctx, b).Close()
	})
}

// latestPerVoter keeps only each voter's latest vote: one INSERT .. ON
// CONFLICT may not touch the same row twice.
func latestPerVoter(votes []ballot.Vote) []ballot.Vote {
	votes = slices.Clone(votes)
	slices.SortFunc(votes, func(x, y ballot.Vote) int {
		if c := cmp.Compare(x.Voter, y.Voter); c != 0 {
			return c
		}
		switch {
		case ballot.Later(x, y):
			return -1
		case ballot.Later(y, x):
			return 1
		}
		return 0
	})
	return slices.CompactFunc(votes, func(x, y ballot.Vote) bool { return x.Voter == y.Voter })
}

// Tally is the current count per option.
type Tally struct {
	A, B int64
}

// ReadTally reads the two tally rows.
func ReadTally(ctx context.Context, c *pgx.Conn) (Tally, error) {
	var t Tally
	rows, err := c.Query(ctx, "SELECT option, n FROM tally")
	if err != nil {
		return t, err
	}
	for rows.Next() {
		var opt string
		var n int64
		if err := rows.Scan(&opt, &n); err != nil {
			return t, err
		}
		switch opt {
		case "a":
			t.A = n
		case "b":
			t.B = n
		}
	}
	if err := rows.Err(); err != nil {
		return t, err
	}
	if rows.CommandTag().RowsAffected() == 0 {
		return t, errors.New("tally table is empty")
	}
	return t, nil
}

// ReadVoter returns the vote Postgres counts for voter now: 'a', 'b', or 0
// if it counts none. It reads one row by primary key, so checking every
// voter of a run costs one index lookup each.
func ReadVoter(ctx context.Context, c *pgx.Conn, voter string) (byte, error) {
	var v string
	err := c.QueryRow(ctx, "SELECT vote FROM votes WHERE voter_id = $1", voter).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !ballot.ValidChoice(v) {
		return 0, fmt.Errorf("voter %s: stored vote %q, want \"a\" or \"b\"", voter, v)
	}
	return v[0], nil
}

// Init creates the schema, retrying until Postgres answers or ctx ends, so
// services can start before the database is up.
func Init(ctx context.Context, cfg Config, logf func(string, ...any)) error {
	wait := 100 * time.Millisecond
	for {
		c, err := Connect(ctx, cfg)
		if err == nil {
			err = EnsureSchema(ctx, c)
			c.Close(context.Background())
		}
		if err == nil || ctx.Err() != nil {
			return err
		}
		logf("postgres: %v (retrying in %v)", err, wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 5*time.Second)
	}
}
