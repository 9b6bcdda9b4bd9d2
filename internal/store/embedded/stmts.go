package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache keeps the statements Tables runs prepared.
//
// Why: the statements differ only in their table, and parsing one took more
// than half of a read by _id on SQLite (a CPU profile of the reminder burst:
// sqlite3_prepare_v2 5.2 s of the 9.5 s spent in such reads). database/sql
// prepares a cached statement once per connection of the pool and reuses it.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}} }

// get returns q prepared.
func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	s, ok := c.stmts[q]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.stmts[q]; ok { // prepared meanwhile by another caller
		_ = s.Close()
		return prev, nil
	}
	c.stmts[q] = s
	return s, nil
}

// close closes every statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.stmts {
		_ = s.Close()
		delete(c.stmts, q)
	}
}
