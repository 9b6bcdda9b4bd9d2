package cursor

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// WatchNamedBy returns a Watch that names the server of every new
// connection with name (a test's stand-in for run_id).
func WatchNamedBy(name func() string) *Watch {
	return &Watch{identify: func(context.Context, *redis.Conn) string { return name() }}
}

// Server is the name of the server w saw last ("" when it could not tell).
func (w *Watch) Server() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.server
}
