package storage

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/swarmlab/swarmlab/app/crud/internal/balance"
)

// nodes is the database/sql connector of the SQL store: every new pooled
// connection goes to a database node chosen by pool, which resolves the
// names again at each connection (so tasks.db:3306 follows the db tasks as
// they come and go), takes the nodes in turn (round robin over
// connections), and tries a node that just failed last.
type nodes struct {
	base *mysql.Config
	pool *balance.Pool
	// session is run on every new connection (the causal-reads setting).
	session string
}

// mysqlConn is what the MySQL driver's connections implement; nodeConn
// embeds it so that database/sql sees all of it, and adds the node.
type mysqlConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

type nodeConn struct {
	mysqlConn
	addr string
}

func (n *nodes) Driver() driver.Driver { return mysql.MySQLDriver{} }

// Connect opens a connection on the first node, in this turn's order, that
// accepts one.
func (n *nodes) Connect(ctx context.Context) (driver.Conn, error) {
	addrs, err := n.pool.Order(ctx)
	if err != nil {
		return nil, fmt.Errorf("no database node: %w", err)
	}
	var errs []error
	for _, a := range addrs {
		c, err := n.dial(ctx, a)
		if err == nil {
			return c, nil
		}
		n.pool.Failed(a)
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no database node accepted a connection: %w", errors.Join(errs...))
}

func (n *nodes) dial(ctx context.Context, addr string) (driver.Conn, error) {
	cfg := n.base.Clone()
	cfg.Addr = addr
	ctr, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := ctr.Connect(ctx)
	if err != nil {
		return nil, err
	}
	mc, ok := dc.(mysqlConn)
	if !ok {
		dc.Close()
		return nil, fmt.Errorf("the MySQL driver's connection (%T) lacks an interface database/sql needs", dc)
	}
	if n.session != "" {
		if _, err := mc.ExecContext(ctx, n.session, nil); err != nil && !unknownVariable(err) {
			mc.Close()
			return nil, fmt.Errorf("%s: %w", n.session, err)
		}
	}
	return &nodeConn{mc, addr}, nil
}

// unknownVariable is a server without wsrep (a MySQL): no Galera, so reads
// are causal anyway.
func unknownVariable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1193
}
