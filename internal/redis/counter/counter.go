// Package counter hands out increasing numbers shared by every replica, from
// Redis: customer-number sequences and round-robin turns. Redis INCR is atomic
// and fast; what Redis cannot promise (its data may be lost on a restart without
// persistence) the callers guard with a unique index in MongoDB, and use AtLeast
// to move a counter past numbers already used.
package counter

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Counters is a family of named counters under one key prefix.
type Counters struct {
	client redis.UniversalClient
	prefix string
}

// New returns counters stored under prefix in client.
func New(client redis.UniversalClient, prefix string) *Counters {
	return &Counters{client: client, prefix: prefix}
}

// Next returns the next value of counter name, starting at 1.
func (c *Counters) Next(ctx context.Context, name string) (int64, error) {
	n, err := c.client.Incr(ctx, c.prefix+name).Result()
	if err != nil {
		return 0, fmt.Errorf("next value of counter %s: %w", name, err)
	}
	return n, nil
}

// nextIfSetScript increments the counter only if Redis has it.
var nextIfSetScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCR', KEYS[1])
end
return 0`)

// NextIfSet is Next for a counter Redis holds; for one it does not hold (never
// used, or lost with Redis's data) it returns 0 and leaves it unset, so that
// the caller can first move it past the numbers used (AtLeast).
func (c *Counters) NextIfSet(ctx context.Context, name string) (int64, error) {
	n, err := nextIfSetScript.Run(ctx, c.client, []string{c.prefix + name}).Int64()
	if err != nil {
		return 0, fmt.Errorf("next value of counter %s: %w", name, err)
	}
	return n, nil
}

// raiseScript sets the counter to ARGV[1] unless it already is at least that.
var raiseScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local want = tonumber(ARGV[1])
if cur < want then
  redis.call('SET', KEYS[1], want)
  return want
end
return cur`)

// AtLeast moves counter name up to n if it is below, so that Next returns more
// than n. It never moves a counter down, so racing callers cannot undo each other.
func (c *Counters) AtLeast(ctx context.Context, name string, n int64) error {
	if err := raiseScript.Run(ctx, c.client, []string{c.prefix + name}, n).Err(); err != nil {
		return fmt.Errorf("raise counter %s to %d: %w", name, n, err)
	}
	return nil
}
