// Package ratelimit counts attempts in Redis, so a limit holds across every
// fieldcrm replica that shares the Redis server.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Failures blocks a key after Max failures within Window. The window starts at
// the first failure and is not extended by later ones, so a blocked caller knows
// exactly when it may try again (the key's remaining time to live).
type Failures struct {
	client redis.UniversalClient
	prefix string
	Max    int64
	Window time.Duration
}

// NewFailures returns a limiter storing its counters under prefix.
func NewFailures(client redis.UniversalClient, prefix string, max int64, window time.Duration) *Failures {
	return &Failures{client: client, prefix: prefix, Max: max, Window: window}
}

// incrWithWindow increments a counter and starts its window on the first failure
// in one atomic step, so a crash between INCR and PEXPIRE cannot leave a counter
// that never expires.
var incrWithWindow = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// key hashes the caller's key: Redis then holds no e-mail addresses or IPs in clear.
func (f *Failures) key(k string) string {
	sum := sha256.Sum256([]byte(k))
	return f.prefix + "fail:" + hex.EncodeToString(sum[:12])
}

// Blocked returns how long key must still wait, or 0 when it may try.
func (f *Failures) Blocked(ctx context.Context, k string) (time.Duration, error) {
	key := f.key(k)
	n, err := f.client.Get(ctx, key).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read failure count: %w", err)
	}
	if n < f.Max {
		return 0, nil
	}
	ttl, err := f.client.PTTL(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("read failure window: %w", err)
	}
	if ttl <= 0 {
		return time.Second, nil // expiring right now; ask for a short wait
	}
	return ttl, nil
}

// Failed counts one failure of key.
func (f *Failures) Failed(ctx context.Context, k string) error {
	if err := incrWithWindow.Run(ctx, f.client, []string{f.key(k)}, f.Window.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("count failure: %w", err)
	}
	return nil
}

// Reset forgets key's failures.
func (f *Failures) Reset(ctx context.Context, k string) error {
	if err := f.client.Del(ctx, f.key(k)).Err(); err != nil {
		return fmt.Errorf("reset failures: %w", err)
	}
	return nil
}
