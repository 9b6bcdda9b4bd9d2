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
// survived, so a Sequencer that sees a change checks the counter again
// before it hands out another number (see check), and every check records,
// per tenant in Redis, the server it ran on: a check that finds another
// name there knows the tenant's counter has not been vouched for on this
// server, also in a process started after the change.
//
// Install OnConnect as the Redis client's OnConnect: a restart or a failover
// breaks every connection, and go-redis runs OnConnect on each new one before
// any command of ours goes over it, so a number taken from the new server is
// taken after the change is counted.
type Watch struct {
	// identify names the server a connection reaches ("" when it cannot
	// tell, as the in-process Redis cannot, or when the connection is not
	// one that holds data: a Sentinel's).
	identify func(ctx context.Context, cn *redis.Conn) string
	mu       sync.Mutex
	// servers are the names last seen, by where they were reached: one
	// place for a single server or a Sentinel's master, each node's
	// address on a Cluster (every node has its own run_id).
	servers map[string]string
	changes atomic.Uint64
}

// NewWatch returns a Watch that names servers by their run_id, which Redis
// draws anew at every start (a promoted replica has its own).
func NewWatch() *Watch { return &Watch{identify: runID} }

// OnConnect records the server a new connection reaches. It never refuses a
// connection: a server it cannot name counts as no change.
func (w *Watch) OnConnect(ctx context.Context, cn *redis.Conn) error {
	name := w.identify(ctx, cn)
	if name == "" {
		return nil
	}
	place := ""
	if where, ok := strings.CutPrefix(name, "cluster:"); ok {
		place, name = cn.String(), where
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.servers == nil {
		w.servers = map[string]string{}
	}
	if old := w.servers[place]; old != "" && old != name {
		w.changes.Add(1)
	}
	w.servers[place] = name
	return nil
}

// Changes counts the changes of server seen so far.
func (w *Watch) Changes() uint64 {
	if w == nil {
		return 0
	}
	return w.changes.Load()
}

// Server names the server last seen ("" when none could be named, or on a
// Cluster, whose tenants live on several).
func (w *Watch) Server() string {
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.servers[""]
}

// runID reads the run_id of INFO server; a Cluster node's is marked
// "cluster:", and a Sentinel (which holds no data) is not named.
func runID(ctx context.Context, cn *redis.Conn) string {
	info, err := cn.Info(ctx, "server").Result()
	if err != nil {
		return ""
	}
	var id, mode string
	for line := range strings.Lines(info) {
		key, value, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch key {
		case "run_id":
			id = value
		case "redis_mode":
			mode = value
		}
	}
	switch {
	case id == "" || mode == "sentinel":
		return ""
	case mode == "cluster":
		return "cluster:" + id
	}
	return id
}
