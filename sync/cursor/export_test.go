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
