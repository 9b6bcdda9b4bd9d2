package watermelon

import (
	"context"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
)

// sequencer tells how far pulls may read and where a device stood before a
// pull (see package cursor).
type sequencer interface {
	Watermark(ctx context.Context, tenant string) (int64, error)
	RememberPull(ctx context.Context, tenant, user, device string, from, to int64, more bool, newTables []string) error
	PushBase(ctx context.Context, tenant, user, device string, pushedAt int64) (base int64, known bool, err error)
	RoundOf(ctx context.Context, tenant, user, device string, from int64) (start int64, newTables []string, err error)
}

// tombstoneStore is what purging old deletions needs (see Purge).
type tombstoneStore interface {
	TenantIDs(ctx context.Context) ([]string, error)
	Tombstones(ctx context.Context, coll, tenant string, before time.Time, limit int) ([]string, int64, error)
	PurgeRecords(ctx context.Context, coll, tenant string, ids []string) error
	SyncFloor(ctx context.Context, tenant string) (int64, error)
	RaiseSyncFloor(ctx context.Context, tenant string, floor int64) error
}

// Engine serves the sync protocol.
type Engine struct {
	tables     []table
	seq        sequencer
	tombstones tombstoneStore
	pageSize   int
	// PushParallel is how many rows of a pushed table are applied at once
	// (DefaultPushParallel unless set before the engine serves).
	PushParallel int
}

// DefaultPageSize is the most records one pull returns.
const DefaultPageSize = 5000

// New returns an Engine over the CRM's collections. pageSize 0 means DefaultPageSize.
func New(svc *crm.Service, seq sequencer, tombstones tombstoneStore, pageSize int) *Engine {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	return &Engine{
		seq:          seq,
		tombstones:   tombstones,
		pageSize:     pageSize,
		PushParallel: DefaultPushParallel,
		// Parents first: a push applies tables in this order, so a customer
		// created offline exists when its visits arrive in the same push.
		tables: []table{
			newTable(svc.Customers), newTable(svc.Contacts), newTable(svc.Interactions), newTable(svc.Tasks),
			newTable(svc.Orders), newTable(svc.Payments), newTable(svc.Tickets), newTable(svc.Surveys),
			newTable(svc.LoyaltyEntries), serverTable(svc.Conflicts), newTable(svc.Notifications),
		},
	}
}

func (e *Engine) table(name string) table {
	for _, t := range e.tables {
		if t.schema().Name == name {
			return t
		}
	}
	return nil
}

// Schema describes the synced tables.
func (e *Engine) Schema() Schema {
	s := Schema{Version: SchemaVersion}
	for _, t := range e.tables {
		s.Tables = append(s.Tables, t.schema())
	}
	return s
}
