// Package crm is the customer-management logic that every write path goes
// through: the REST API, offline sync and imports. It normalizes and
// validates records, enforces who may see and change what, assigns customer
// numbers, detects duplicates, keeps derived state (credit ratings, balances,
// loyalty tiers) current, and audits every change. For sync it also decides
// what a device's change means for a record (devicewrites.go): each column's
// conflict policy, what is recorded in the conflicts table, and how a
// conflict is reverted.
//
// All records share one generic implementation (Records) with per-collection
// hooks; the rules particular to an entity live in its hook file.
package crm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// recordStore is the persistence the service needs; *store.Store implements it.
type recordStore interface {
	Insert(ctx context.Context, coll string, meta *models.Meta, doc any, entry models.AuditEntry) error
	InsertUnaudited(ctx context.Context, coll string, meta *models.Meta, doc any) error
	// Revise is the versioned read-modify-write of record id (see
	// models.Revision): edit changes *rec, Revise writes it as the next
	// version and starts again from a fresh read when another writer
	// committed first.
	Revise(ctx context.Context, coll, tenant, id string, rec any, edit func(rev *models.Revision) error) error
	Get(ctx context.Context, coll, tenant, id string, out any) error
	Find(ctx context.Context, coll string, q models.Query, out any) error
	Each(ctx context.Context, coll string, q models.Query, each func(decode func(out any) error) error) error
	Changes(ctx context.Context, coll, tenant string, after, upTo int64, limit int, out any) error
	ChangesSeen(ctx context.Context, coll, tenant string, after, upTo int64, limit int, sc models.Scope, orAssignee string, live bool, out any) error
	// Tally counts and sums records by the values of some fields, from
	// index entries where the engine can (see store.Tally).
	Tally(ctx context.Context, coll string, t models.Tally) ([]models.TallyGroup, error)
	// Funnel counts the moves of customers' stage histories in a period,
	// from an index of the moves (see store.Funnel).
	Funnel(ctx context.Context, f models.Funnel) ([]models.FunnelCount, error)
	CustomersSharingKeys(ctx context.Context, tenant string, keys []string, exceptID string, limit int) ([]models.Customer, error)
	IndexCustomerKeys(ctx context.Context, tenant, id string, before, now []string) error
	InsertCustomer(ctx context.Context, c *models.Customer, entry models.AuditEntry, keys []string, numberSeq int64) error
	Audit(ctx context.Context, tenant, coll, recordID string, before *time.Time, limit int) ([]models.AuditEntry, error)
	AuditOf(ctx context.Context, tenant string, recordIDs []string) ([]models.AuditEntry, error)
	ScrubAudit(ctx context.Context, tenant string, recordIDs []string, fields map[string][]string, replacement any) (int, error)
	LogEvent(ctx context.Context, e models.AuditEntry) error
	SaveImport(ctx context.Context, im models.Import) error
	RunningImports(ctx context.Context) ([]models.Import, error)
	InterruptImport(ctx context.Context, id, runner string, updatedAt time.Time, reason string, at time.Time) (bool, error)
	Import(ctx context.Context, tenant, id string) (models.Import, error)
	AddImportFailures(ctx context.Context, importID string, failures []models.ImportFailure) error
	ImportFailures(ctx context.Context, importID, after string, limit int) ([]models.ImportFailure, error)
	AddSkippedRows(ctx context.Context, importID string, page int, rows []models.SkippedRow) error
	SkippedRows(ctx context.Context, importID string, page int) ([]models.SkippedRow, error)
	ClaimCustomerNumber(ctx context.Context, tenant string, seq int64, number, customerID string) error
	HighestCustomerNumber(ctx context.Context, tenant string) (int64, error)
	Tenant(ctx context.Context, id string) (models.Tenant, error)
	UpdateSettings(ctx context.Context, tenant string, st models.Settings) error
	TenantsWithPoolReclaim(ctx context.Context) ([]string, error)
	TenantIDs(ctx context.Context) ([]string, error)
	User(ctx context.Context, tenant, id string) (models.User, error)
	Users(ctx context.Context, tenant string, f models.UserFilter) ([]models.User, error)
	Team(ctx context.Context, tenant, id string) (models.Team, error)
	Teams(ctx context.Context, tenant, managerID string) ([]models.Team, error)
}

// counters hand out numbers shared by all replicas (see package counter).
type counters interface {
	Next(ctx context.Context, name string) (int64, error)
	NextIfSet(ctx context.Context, name string) (int64, error)
	AtLeast(ctx context.Context, name string, n int64) error
}

// sequencer numbers every change for sync (see package cursor).
type sequencer interface {
	Begin(ctx context.Context, tenant string) (seq int64, done func(), err error)
	Lease() time.Duration
}

// Options configure a Service.
type Options struct {
	Store    recordStore
	Counters counters
	// Sequencer stamps every change with the tenant's next sync number.
	Sequencer sequencer
	// Sealer encrypts national ID numbers at rest.
	Sealer *Sealer
	// Reminders, when set, hears of every task and ticket change (the
	// reminder scheduler).
	Reminders Observer
	Now       func() time.Time
	Logger    *slog.Logger
}

// Observer is told of every task and ticket write, on every path (REST,
// sync, cascades), after it is stored. Its errors are logged, not returned:
// the record is stored, and the observer has its own way to catch up
// (package notify reconciles reminders with the records).
type Observer interface {
	TaskChanged(ctx context.Context, t models.Task) error
	TicketChanged(ctx context.Context, t models.Ticket) error
}

// Service is the CRM. Its Records fields serve the generic create, read, list,
// update and delete of each collection; its methods do the rest.
type Service struct {
	opts     Options
	store    recordStore
	counters counters
	seq      sequencer
	sealer   *Sealer
	observer Observer
	now      func() time.Time
	log      *slog.Logger
	// instance names this Service among the processes sharing the database
	// (a fresh id each start), for the imports it runs.
	instance string
	runs     importRuns
	// restoringNumbers lets one caller at a time restore a customer-number
	// counter Redis lost (see nextNumber).
	restoringNumbers sync.Mutex

	Customers      *Records[models.Customer]
	Contacts       *Records[models.Contact]
	Interactions   *Records[models.Interaction]
	Tasks          *Records[models.Task]
	Orders         *Records[models.Order]
	Payments       *Records[models.Payment]
	Tickets        *Records[models.Ticket]
	Surveys        *Records[models.Survey]
	LoyaltyEntries *Records[models.LoyaltyEntry]
	Conflicts      *Records[models.Conflict]
	Notifications  *Records[models.Notification]
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Counters == nil || o.Sequencer == nil || o.Sealer == nil {
		return nil, fmt.Errorf("crm: store, counters, sequencer and sealer are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Service{opts: o, store: o.Store, counters: o.Counters, seq: o.Sequencer, sealer: o.Sealer, observer: o.Reminders, now: o.Now, log: o.Logger,
		instance: models.NewID(), runs: importRuns{own: map[string]bool{}}}
	s.Customers = newRecords(s, store.Customers, s.customerHooks())
	s.Contacts = newRecords(s, store.Contacts, s.contactHooks())
	s.Interactions = newRecords(s, store.Interactions, s.interactionHooks())
	s.Tasks = newRecords(s, store.Tasks, s.taskHooks())
	s.Orders = newRecords(s, store.Orders, s.orderHooks())
	s.Payments = newRecords(s, store.Payments, s.paymentHooks())
	s.Tickets = newRecords(s, store.Tickets, s.ticketHooks())
	s.Surveys = newRecords(s, store.Surveys, s.surveyHooks())
	s.LoyaltyEntries = newRecords(s, store.LoyaltyEntries, s.loyaltyHooks())
	s.Conflicts = newRecords(s, store.Conflicts, hooks[models.Conflict]{
		appendOnly: true, // written by sync, resolved through Resolve
		prepare: func(_ context.Context, w *write[models.Conflict]) error {
			if of := w.rec.Of; of != nil {
				w.rec.OwnerID, w.rec.TeamID = of.OwnerID, of.TeamID
			}
			s.sealConflict(w.rec)
			return nil
		},
		view: s.viewConflict,
		filters: map[string]filter{
			"table":     described(equals("table"), "the synced table of the record"),
			"record_id": described(equals("record_id"), "the record's id"),
			"resolved":  described(flag("resolved_at"), "resolved"),
		},
	})
	s.Notifications = newRecords(s, store.Notifications, hooks[models.Notification]{
		prepare: func(_ context.Context, w *write[models.Notification]) error {
			if w.old == nil && w.actor.UserID != models.SystemUserID {
				return &models.ForbiddenError{Reason: "notifications are written by the server"}
			}
			// The recipient owns it (so it syncs to their devices) and alone sees it.
			w.rec.OwnerID, w.rec.TeamID = w.rec.UserID, ""
			if w.rec.ReadAt != nil {
				at := w.rec.ReadAt.UTC()
				w.rec.ReadAt = &at
			}
			return nil
		},
		unauditedCreate: true,
		ownOnly:         true,
		filters: map[string]filter{"read": described(flag("read_at"), "read"), "kind": described(equals("kind"), "kind of notification"),
			"task_id": described(equals("task_id"), "the task it is about")},
	})
	return s, nil
}

// WithClock returns the same CRM reading the time from now: it writes
// records as if at that moment (the demo seeder writes a year of history, so
// stage histories, SLA times and completion times are the year's).
func (s *Service) WithClock(now func() time.Time) (*Service, error) {
	o := s.opts
	o.Now = now
	return New(o)
}

// Task reads a live task of tenant as the server (for reminders).
func (s *Service) Task(ctx context.Context, tenant, id string) (models.Task, error) {
	return s.Tasks.live(ctx, tenant, id)
}

// Ticket reads a live ticket of tenant as the server (for SLA reminders).
func (s *Service) Ticket(ctx context.Context, tenant, id string) (models.Ticket, error) {
	return s.Tickets.live(ctx, tenant, id)
}

// Notify stores a notification in its recipient's inbox under id (the same id
// for the same event, so that writing it twice stores it once).
func (s *Service) Notify(ctx context.Context, n models.Notification, id string) (models.Notification, error) {
	created, err := s.Notifications.createAs(ctx, models.SystemActor(n.TenantID), n, false, id)
	if errors.Is(err, models.ErrConflict) {
		return s.Notifications.load(ctx, n.TenantID, id)
	}
	return created, err
}

// settings returns the tenant's CRM settings with defaults filled in: read
// from the store, or once per unit of work in a context from SettingsOnce.
func (s *Service) settings(ctx context.Context, tenant string) (models.Settings, error) {
	memo, _ := ctx.Value(settingsMemoKey{}).(*settingsMemo)
	if memo == nil {
		return s.readSettings(ctx, tenant)
	}
	memo.mu.Lock()
	defer memo.mu.Unlock()
	if st, ok := memo.byTenant[tenant]; ok {
		return st, nil
	}
	st, err := s.readSettings(ctx, tenant)
	if err == nil {
		memo.byTenant[tenant] = st
	}
	return st, err
}

func (s *Service) readSettings(ctx context.Context, tenant string) (models.Settings, error) {
	t, err := s.store.Tenant(ctx, tenant)
	if err != nil {
		return models.Settings{}, fmt.Errorf("load settings of tenant %s: %w", tenant, err)
	}
	return t.Settings.WithDefaults(), nil
}

type settingsMemoKey struct{}

type settingsMemo struct {
	mu       sync.Mutex
	byTenant map[string]models.Settings
}

// SettingsOnce returns a context in which the service reads each tenant's
// settings once, for a unit of work whose records should all follow the same
// settings: a sync push, a batch of due reminders. Each of its records read
// them anew before, which was a fifth of a pushed edit's time. An admin's
// change of settings during the push applies from the next one. PatchSettings
// never uses the memo: it changes a copy of its own.
func SettingsOnce(ctx context.Context) context.Context {
	return context.WithValue(ctx, settingsMemoKey{}, &settingsMemo{byTenant: map[string]models.Settings{}})
}

// TenantSettings returns a tenant's settings for the server's own work (the
// reminder worker), memoized in a context from SettingsOnce.
func (s *Service) TenantSettings(ctx context.Context, tenant string) (models.Settings, error) {
	return s.settings(ctx, tenant)
}

// Settings returns the actor's tenant settings.
func (s *Service) Settings(ctx context.Context, a models.Actor) (models.Settings, error) {
	return s.settings(ctx, a.TenantID)
}

// PatchSettings lets an admin change the tenant's settings: apply writes the
// request onto the current settings, which are then validated as a whole.
func (s *Service) PatchSettings(ctx context.Context, a models.Actor, apply func(dst any) error) (models.Settings, error) {
	if a.Role != models.RoleAdmin {
		return models.Settings{}, &models.ForbiddenError{Reason: "only admins change settings"}
	}
	st, err := s.readSettings(ctx, a.TenantID) // a copy of its own to change
	if err != nil {
		return st, err
	}
	if err := apply(&st); err != nil {
		return st, err
	}
	st = st.WithDefaults()
	if err := st.Validate(); err != nil {
		return st, err
	}
	if st.SupportTeamID != "" {
		if _, err := s.teamMembers(ctx, a.TenantID, st.SupportTeamID); err != nil {
			return st, err
		}
	}
	if err := s.store.UpdateSettings(ctx, a.TenantID, st); err != nil {
		return st, err
	}
	return st, nil
}

// Audit lists the tenant's audit entries, newest first (admins only).
func (s *Service) Audit(ctx context.Context, a models.Actor, coll, recordID string, before *time.Time, limit int) ([]models.AuditEntry, error) {
	if a.Role != models.RoleAdmin {
		return nil, &models.ForbiddenError{Reason: "only admins read the audit log"}
	}
	return s.store.Audit(ctx, a.TenantID, coll, recordID, before, limit)
}

// teamMembers returns the active users of a team, in id order, or a field
// error naming support_team_id when the team does not exist.
func (s *Service) teamMembers(ctx context.Context, tenant, teamID string) ([]models.User, error) {
	active := true
	users, err := s.store.Users(ctx, tenant, models.UserFilter{TeamIDs: []string{teamID}, Active: &active})
	if err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, &models.ValidationError{Fields: []models.FieldError{{Field: "support_team_id", Message: "the team has no active members"}}}
	}
	return users, nil
}

// MarkRead marks one of the actor's notifications read (once: reading it
// again keeps the first time).
func (s *Service) MarkRead(ctx context.Context, a models.Actor, id string) (models.Notification, error) {
	return s.Notifications.mutate(ctx, a, id, "read", func(w *write[models.Notification]) error {
		if err := s.Notifications.checkEdit(a, w.old, 0); err != nil {
			return err
		}
		if w.rec.ReadAt == nil {
			now := w.now.Truncate(time.Millisecond)
			w.rec.ReadAt = &now
		}
		return nil
	})
}

// LogExport writes an audit entry for data about to leave fieldcrm (what:
// "customers"), with the request's details, and returns the export's id.
// It is written before the first row is sent: an export that breaks off
// half-way has still been recorded.
func (s *Service) LogExport(ctx context.Context, a models.Actor, what string, details map[string]any) (string, error) {
	id := models.NewID()
	changes := make([]models.FieldChange, 0, len(details))
	for _, k := range slices.Sorted(maps.Keys(details)) {
		changes = append(changes, models.FieldChange{Field: k, New: details[k]})
	}
	err := s.store.LogEvent(ctx, models.AuditEntry{TenantID: a.TenantID, Collection: "exports", RecordID: id,
		Action: "export " + what, ActorID: a.UserID, At: s.now().UTC(), Changes: changes})
	return id, err
}
