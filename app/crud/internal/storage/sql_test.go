package storage

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestClassify(t *testing.T) {
	my := func(n uint16) error { return fmt.Errorf("exec: %w", &mysql.MySQLError{Number: n}) }
	for _, c := range []struct {
		name           string
		err            error
		idempotent     bool
		retry, unknown bool
		nodeFailed     bool
	}{
		{"certification conflict", my(1213), false, true, false, false},
		{"certification conflict at commit", commitError{my(1213)}, false, true, false, false},
		{"node not in the primary component", my(1047), false, true, false, true},
		{"server shutting down", my(1053), false, true, false, true},
		{"duplicate key (a bug, not a node)", my(1062), false, false, false, false},
		{"no connection at all", connectError{errors.New("connection refused")}, false, true, false, false},
		{"connection lost before commit", driver.ErrBadConn, false, true, false, true},
		{"connection lost at commit", commitError{mysql.ErrInvalidConn}, false, false, true, true},
		{"commit timed out", commitError{context.DeadlineExceeded}, false, false, true, true},
		{"autocommit DELETE, connection lost once sent", autocommitted(mysql.ErrInvalidConn), false, false, true, true},
		{"autocommit DELETE timed out", autocommitted(context.DeadlineExceeded), false, false, true, true},
		{"autocommit DELETE refused by a node out of the primary component", autocommitted(my(1047)), false, true, false, true},
		{"idempotent write lost at commit", commitError{mysql.ErrInvalidConn}, true, true, false, true},
		{"not found", ErrNotFound, true, false, false, false},
	} {
		retry, unknown := classify(c.err, c.idempotent)
		if retry != c.retry || unknown != c.unknown || nodeFailed(c.err) != c.nodeFailed {
			t.Errorf("%s: retry %v unknown %v nodeFailed %v, want %v %v %v", c.name,
				retry, unknown, nodeFailed(c.err), c.retry, c.unknown, c.nodeFailed)
		}
	}
}

func TestLikeEscaper(t *testing.T) {
	if got := likeEscaper.Replace("a_b%c!d"); got != "a!_b!%c!!d" {
		t.Errorf("escaped %q", got)
	}
}
