package cursor

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Watch notices that Redis became another server: restarted (an AOF
// missing its last second, a snapshot restored) or replaced by a promoted
// replica. Either may have taken the counter back while its "seeded" mark
// survived, so a Sequencer that sees a change checks the counter against
// the database again before it hands out another number (see check).
//
// Install OnConnect as the Redis client's OnConnect: a restart or a failover
// breaks every connection, and go-redis runs OnConnect on each new one before
// any command of ours goes over it, so a number taken from the new server is
// taken after the change is counted.
type Watch struct {
	// identify names the server a connection reaches ("" when it cannot
	// tell, as the in-process Redis cannot).
	identify func(ctx context.Context, cn *redis.Conn) string
	mu       sync.Mutex
	server   string
	changes  atomic.Uint64
}

// NewWatch returns a Watch that names servers by their run_id, which Redis
// draws anew at every start (a promoted replica has its own).
func NewWatch() *Watch { return &Watch{identify: runID} }

// OnConnect records the server a new connection reaches. It never refuses a
// connection: a server it cannot name counts as no change.
func (w *Watch) OnConnect(ctx context.Context, cn *redis.Conn) error {
	server := w.identify(ctx, cn)
	if server == "" {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.server != "" && w.server != server {
		w.changes.Add(1)
	}
	w.server = server
	return nil
}

// Changes counts the changes of server seen so far.
func (w *Watch) Changes() uint64 {
	if w == nil {
		return 0
	}
	return w.changes.Load()
}

// runID reads the run_id line of INFO server.
func runID(ctx context.Context, cn *redis.Conn) string {
	info, err := cn.Info(ctx, "server").Result()
	if err != nil {
		return ""
	}
	for line := range strings.Lines(info) {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return id
		}
	}
	return ""
}
