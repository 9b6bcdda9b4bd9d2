package watermelon

import (
	"context"
	"errors"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
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

// CurrentSchema is the schema Engine.Schema describes, known without a
// server: what `fieldcrm schema` generates an app's models from. Its tables
// are those of New, in the same order (TestCurrentSchemaIsTheEngines holds
// the two together).
func CurrentSchema() Schema {
	e := &Engine{tables: []table{
		newTable(named[models.Customer]("customers")), newTable(named[models.Contact]("contacts")),
		newTable(named[models.Interaction]("interactions")), newTable(named[models.Task]("tasks")),
		newTable(named[models.Order]("orders")), newTable(named[models.Payment]("payments")),
		newTable(named[models.Ticket]("tickets")), newTable(named[models.Survey]("surveys")),
		newTable(named[models.LoyaltyEntry]("loyalty_entries")), serverTable(named[models.Conflict]("conflicts")),
		newTable(named[models.Notification]("notifications")),
	}}
	return e.Schema()
}

// named is a collection of records R known by its name alone, which is all
// describing its table takes; it holds no records.
type named[R any] string

func (n named[R]) Collection() string { return string(n) }
func (n named[R]) ChangesSince(context.Context, models.Actor, int64, int64, int, crm.Narrowing) ([]crm.Change[R], error) {
	return nil, nil
}
func (n named[R]) ApplyDeviceEdit(context.Context, models.Actor, crm.DeviceEdit) (crm.DeviceOutcome, error) {
	return crm.DeviceOutcome{}, errNoRecords
}
func (n named[R]) ApplyDeviceDelete(context.Context, models.Actor, string, int64) (crm.DeviceOutcome, error) {
	return crm.DeviceOutcome{}, errNoRecords
}
func (n named[R]) ApplyDeviceCreates(_ context.Context, _ models.Actor, edits []crm.DeviceEdit, _ int) ([]crm.DeviceOutcome, []error) {
	errs := make([]error, len(edits))
	for i := range errs {
		errs[i] = errNoRecords
	}
	return make([]crm.DeviceOutcome, len(edits)), errs
}
func (n named[R]) EditReadsOthers([]string) bool { return false }

var errNoRecords = errors.New("a schema-only table holds no records")
