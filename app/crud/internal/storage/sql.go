package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/swarmlab/swarmlab/app/crud/internal/balance"
	"github.com/swarmlab/swarmlab/app/crud/internal/reqlog"
)

// Config says how the SQL store reaches the database.
type Config struct {
	// Addrs are the database nodes, host:port. A host is resolved again
	// at every new connection: tasks.db:3306 names every db task.
	Addrs                    []string
	User, Password, Database string
	// CausalReads sets wsrep_sync_wait=1 on every connection: a read
	// waits until its node has applied every write the cluster had
	// committed when the read began, so a read after an acknowledged
	// write sees it, whichever node serves it. Off (wsrep_sync_wait=0),
	// a read can miss a write another node committed a moment ago: the
	// "broken" mode the history checker must catch.
	CausalReads bool
	// MaxConns bounds the pool (open connections, all nodes together).
	MaxConns int
	// Attempts is how many times an operation is tried, on another
	// connection (so, most often, another node) each time.
	Attempts int
	// AttemptTimeout bounds one attempt: a node that does not answer in
	// time counts as failed.
	AttemptTimeout time.Duration
	// DownFor is how long a node that failed is tried after the others.
	DownFor time.Duration
	// LookupHost resolves a host; net.DefaultResolver's if nil.
	LookupHost func(ctx context.Context, host string) ([]string, error)
}

func (c *Config) defaults() {
	if c.MaxConns <= 0 {
		c.MaxConns = 16
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 3 * time.Second
	}
	if c.DownFor <= 0 {
		c.DownFor = 5 * time.Second
	}
}

// ErrOutcomeUnknown is a PUT whose COMMIT was sent but whose answer never
// came (the connection broke, or the node did not answer in time): the write
// may or may not have happened. It is not retried, since a second try could
// count one write twice.
var ErrOutcomeUnknown = errors.New("the commit was sent but its answer was lost: the write may or may not have happened")

// Schema is the items table. The id's collation is binary with no padding,
// so ids compare (and sort, and prefix-match) byte by byte: "A" is not "a",
// and "a " is not "a".
const Schema = `CREATE TABLE IF NOT EXISTS items (
	id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL PRIMARY KEY,
	value MEDIUMTEXT CHARACTER SET utf8mb4 NOT NULL,
	version BIGINT NOT NULL
) ENGINE=InnoDB`

// SQL is the Store on MariaDB/Galera.
type SQL struct {
	db    *sql.DB
	nodes *nodes
	cfg   Config
}

// Open returns a store; it connects only when first used.
func Open(cfg Config) (*SQL, error) {
	cfg.defaults()
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("no database address")
	}
	base := mysql.NewConfig()
	base.Net = "tcp"
	base.User, base.Passwd, base.DBName = cfg.User, cfg.Password, cfg.Database
	base.Timeout = min(2*time.Second, cfg.AttemptTimeout)
	base.ReadTimeout, base.WriteTimeout = cfg.AttemptTimeout, cfg.AttemptTimeout
	// One round trip per statement: no server-side prepare.
	base.InterpolateParams = true
	session := "SET SESSION wsrep_sync_wait = 0"
	if cfg.CausalReads {
		session = "SET SESSION wsrep_sync_wait = 1"
	}
	n := &nodes{base: base, session: session,
		pool: &balance.Pool{Names: cfg.Addrs, DownFor: cfg.DownFor, Lookup: cfg.LookupHost}}
	db := sql.OpenDB(n)
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	// Connections move back onto a node that returns, in time.
	db.SetConnMaxLifetime(30 * time.Second)
	return &SQL{db: db, nodes: n, cfg: cfg}, nil
}

// Close closes every connection.
func (s *SQL) Close() error { return s.db.Close() }

// Nodes tells each database node last resolved and whether it failed lately.
func (s *SQL) Nodes() map[string]string { return s.nodes.pool.Status() }

// Migrate creates the items table if it is not there.
func (s *SQL) Migrate(ctx context.Context) error {
	return s.do(ctx, true, func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, Schema)
		return err
	})
}

func (s *SQL) Put(ctx context.Context, id, value string) (Item, error) {
	it := Item{ID: id, Value: value}
	err := s.do(ctx, false, func(ctx context.Context, c *sql.Conn) error {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `INSERT INTO items (id, value, version) VALUES (?, ?, 1)
			ON DUPLICATE KEY UPDATE value = VALUES(value), version = version + 1`, id, value); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT version FROM items WHERE id = ?", id).Scan(&it.Version); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return commitError{err}
		}
		return nil
	})
	return it, err
}

func (s *SQL) Get(ctx context.Context, id string) (Item, error) {
	var it Item
	err := s.do(ctx, true, func(ctx context.Context, c *sql.Conn) error {
		err := c.QueryRowContext(ctx, "SELECT id, value, version FROM items WHERE id = ?", id).Scan(&it.ID, &it.Value, &it.Version)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
	return it, err
}

func (s *SQL) Delete(ctx context.Context, id string) error {
	// Not retried when its outcome is unknown, though a DELETE done twice
	// leaves the same: the second one may land after writes acknowledged
	// in between, and remove them. The crud e2e spec's history check found
	// exactly that (a delete stalled 5 s by a database node's loss, done
	// again after four puts, which it wiped).
	return s.do(ctx, false, func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, "DELETE FROM items WHERE id = ?", id)
		return autocommitted(err)
	})
}

// autocommitted is the error of a statement outside a transaction: it is
// its own COMMIT, so a connection lost once it was sent leaves its outcome
// unknown, as a lost COMMIT does. Without it a DELETE whose node died after
// committing it was done again on another node, after a put acknowledged
// in between, and removed it (the crud e2e spec, a database node killed:
// "key k4 is not linearizable", a get answered not found after the put).
func autocommitted(err error) error {
	if err == nil {
		return nil
	}
	return commitError{err}
}

// likeEscaper makes a prefix literal in a LIKE pattern (ESCAPE '!').
var likeEscaper = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")

func (s *SQL) List(ctx context.Context, prefix string) ([]Item, error) {
	var out []Item
	err := s.do(ctx, true, func(ctx context.Context, c *sql.Conn) error {
		out = []Item{}
		rows, err := c.QueryContext(ctx, "SELECT id, value, version FROM items WHERE id LIKE ? ESCAPE '!' ORDER BY id",
			likeEscaper.Replace(prefix)+"%")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var it Item
			if err := rows.Scan(&it.ID, &it.Value, &it.Version); err != nil {
				return err
			}
			out = append(out, it)
		}
		return rows.Err()
	})
	return out, err
}

// Ping reads the items table on some node.
func (s *SQL) Ping(ctx context.Context) error {
	return s.do(ctx, true, func(ctx context.Context, c *sql.Conn) error {
		var one int
		err := c.QueryRowContext(ctx, "SELECT 1 FROM items LIMIT 1").Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
}

// commitError is a failed COMMIT: if the server never answered, nobody
// knows whether it happened.
type commitError struct{ err error }

func (e commitError) Error() string { return "commit: " + e.err.Error() }
func (e commitError) Unwrap() error { return e.err }

// connectError is a failure to get a connection: nothing was sent.
type connectError struct{ err error }

func (e connectError) Error() string { return e.err.Error() }
func (e connectError) Unwrap() error { return e.err }

// do runs f on a pooled connection, and again on another (another node,
// most often) while it fails in a way a retry can fix, up to Attempts times.
// idempotent says whether f may be retried when its outcome is unknown.
func (s *SQL) do(ctx context.Context, idempotent bool, f func(context.Context, *sql.Conn) error) error {
	line := reqlog.From(ctx)
	var errs []error
	for attempt := 1; ; attempt++ {
		line.Attempts = attempt
		err := s.attempt(ctx, line, f)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		retry, unknown := classify(err, idempotent)
		switch {
		case unknown:
			return fmt.Errorf("%w (%v)", ErrOutcomeUnknown, err)
		case !retry:
			return err
		case attempt >= s.cfg.Attempts || ctx.Err() != nil:
			return fmt.Errorf("database unavailable after %d attempts: %w", attempt, errors.Join(errs...))
		}
		// Full jitter: writers that collided on one row do not collide again.
		backoff := min(10*time.Millisecond<<attempt, 500*time.Millisecond)
		select {
		case <-time.After(rand.N(backoff) + time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("database unavailable after %d attempts: %w", attempt, errors.Join(append(errs, ctx.Err())...))
		}
	}
}

func (s *SQL) attempt(ctx context.Context, line *reqlog.Line, f func(context.Context, *sql.Conn) error) error {
	actx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	c, err := s.db.Conn(actx)
	if err != nil {
		return connectError{err}
	}
	defer c.Close()
	addr := nodeOf(c)
	line.DBNode = addr
	err = f(actx, c)
	if err != nil && nodeFailed(err) {
		// Try this node last for a while, and drop this connection: its
		// node is gone, or not serving (not part of the primary component).
		s.nodes.pool.Failed(addr)
		c.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

func nodeOf(c *sql.Conn) string {
	var addr string
	c.Raw(func(dc any) error {
		if nc, ok := dc.(*nodeConn); ok {
			addr = nc.addr
		}
		return nil
	})
	return addr
}

// MariaDB error numbers that say "this node cannot serve now": the
// statement was not done, another node may do it.
const (
	erLockDeadlock   = 1213 // a deadlock, or a Galera certification conflict: rolled back
	erLockWait       = 1205 // lock wait timeout: the statement was rolled back
	erWsrepNotReady  = 1047 // "WSREP has not yet prepared node for application use"
	erServerShutdown = 1053
	erConnKilled     = 1927
	erQueryInterrupt = 1317 // e.g. a Galera brute-force abort of a read
)

// classify says whether f's error may be retried, and whether it leaves the
// outcome unknown (a COMMIT with no answer, not retried unless idempotent).
func classify(err error, idempotent bool) (retry, unknown bool) {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		// The server answered: the statement (or COMMIT) did not happen.
		switch me.Number {
		case erLockDeadlock, erLockWait, erWsrepNotReady, erServerShutdown, erConnKilled, erQueryInterrupt:
			return true, false
		}
		return false, false
	}
	var ce connectError
	if errors.As(err, &ce) {
		return true, false
	}
	if !connectionLost(err) {
		return false, false
	}
	var cm commitError
	if errors.As(err, &cm) && !idempotent {
		return false, true
	}
	return true, false
}

// nodeFailed is an error that says the connection's node should not be
// used for a while.
func nodeFailed(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case erWsrepNotReady, erServerShutdown, erConnKilled:
			return true
		}
		return false
	}
	return connectionLost(err)
}

// connectionLost is an error from the connection rather than the server: it
// broke, or the node did not answer within the attempt's deadline.
func connectionLost(err error) bool {
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne)
}
