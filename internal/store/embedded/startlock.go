package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// startupLockKey is the PostgreSQL advisory lock every fieldcrm replica takes
// while its embedded FerretDB first reads the schema and migrations run.
const startupLockKey int64 = 0x6669656c64637231 // "fieldcr1"

// LockStartup serializes the start-up of replicas that share one PostgreSQL
// database through their own embedded FerretDB. It returns once this process
// holds the lock; release gives it up (so does the process ending, which
// closes the connection).
//
// Why: FerretDB v1 loads the list of schemas and tables once, at its first
// query, and creates what it does not know. Two replicas starting together
// both try to create the same schema; the loser's FerretDB then drops the
// schema it failed to create — the winner's, with its data. Holding the lock
// from before FerretDB's first query until migrations have created every
// collection means each replica loads a complete catalogue and never creates a
// table another one made.
func LockStartup(ctx context.Context, postgreSQLURL string) (release func(), err error) {
	conn, err := pgx.Connect(ctx, postgreSQLURL)
	if err != nil {
		return nil, fmt.Errorf("start-up lock: connect to PostgreSQL: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", startupLockKey); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("start-up lock: wait for other replicas: %w", err)
	}
	return func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(closeCtx, "SELECT pg_advisory_unlock($1)", startupLockKey)
		_ = conn.Close(closeCtx)
	}, nil
}
