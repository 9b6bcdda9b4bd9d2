// Package lease lets one replica among many run a periodic job: the replica
// that takes a job's lease in Redis runs it for that period, the others skip.
package lease

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Leases hands out named leases stored under prefix. Owner names this process
// in the lease's value, so an operator reading Redis sees who holds a job.
type Leases struct {
	client redis.UniversalClient
	prefix string
	owner  string
}

// New returns leases kept under prefix (e.g. "fieldcrm:jobs:") for owner.
func New(client redis.UniversalClient, prefix, owner string) *Leases {
	return &Leases{client: client, prefix: prefix, owner: owner}
}

// Take claims the job's lease for ttl and reports whether this process got it.
// The lease is never released early: it marks the job as done for the period,
// so a replica whose timer fires a moment later does not run it again. A holder
// that dies simply lets the lease run out, and the next period goes to whoever
// asks first.
func (l *Leases) Take(ctx context.Context, job string, ttl time.Duration) (bool, error) {
	ok, err := l.client.SetNX(ctx, l.prefix+job, l.owner, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("take the lease of job %s: %w", job, err)
	}
	return ok, nil
}

// Holder returns who holds the job's lease, or "" when nobody does.
func (l *Leases) Holder(ctx context.Context, job string) (string, error) {
	owner, err := l.client.Get(ctx, l.prefix+job).Result()
	if err == redis.Nil {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the lease of job %s: %w", job, err)
	}
	return owner, nil
}

// PeriodTTL is the lease to take for a job run every period: a little shorter
// than the period, so timers that drift between replicas never skip a period
// altogether, yet long enough that two replicas' ticks in one period meet the
// same lease.
func PeriodTTL(period time.Duration) time.Duration {
	return period - period/10
}
