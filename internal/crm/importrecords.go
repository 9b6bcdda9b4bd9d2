package crm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// What a spreadsheet import brings in: customers, or records that hang off
// customers already in fieldcrm (imported first, or created any other way).
const (
	ImportCustomers    = "customers"
	ImportContacts     = "contacts"
	ImportInteractions = "interactions"
	ImportOrders       = "orders"
	ImportPayments     = "payments"
)

// ImportKinds lists what an import can bring in.
var ImportKinds = []string{ImportCustomers, ImportContacts, ImportInteractions, ImportOrders, ImportPayments}

// ImportedID is the id of a record an import creates from a row: derived from
// the tenant, the kind and the row's key (its reference in the old system, or
// its content), so the same row imported twice is the same record, and a
// later import can find an imported customer or order by its old reference
// with one read by id.
func ImportedID(tenant, kind, key string) string {
	return models.IDFor(tenant, "import", kind, key)
}

// RecordRow is one spreadsheet row of a record that hangs off a customer.
type RecordRow struct {
	// Customer names the record's customer: its customer number, its
	// reference in the old system, its fieldcrm id, or a company's name.
	// Payments name no customer: theirs is their order's.
	Customer string
	// Order names a payment's order: its number in the old system (the
	// order_no column of an orders import) or its fieldcrm id.
	Order string
	// Rep is the e-mail or name of the user the record is logged for (who
	// made the call, took the order); empty means the importer.
	Rep string
	// Record is a *models.Contact, *models.Interaction, *models.Order or
	// *models.Payment; its customer (and a payment's order) are filled in
	// from the references above.
	Record any
}

// RecordImport imports rows of records for one importer, remembering the
// customers and orders it has looked up (a file names the same customer on
// many rows) and the tenant's users.
type RecordImport struct {
	svc   *Service
	actor models.Actor
	// users are the tenant's active users by lower-case e-mail and by name
	// (nil for a name two users share).
	users map[string]*models.User
	me    *models.User
	refs  map[string]string // "customer:<ref>" or "order:<ref>" → id
}

// maxRememberedRefs bounds RecordImport's memory of looked-up references.
const maxRememberedRefs = 100_000

// StartRecordImport begins importing records as the actor.
func (s *Service) StartRecordImport(ctx context.Context, a models.Actor) (*RecordImport, error) {
	active := true
	users, err := s.store.Users(ctx, a.TenantID, models.UserFilter{Active: &active})
	if err != nil {
		return nil, fmt.Errorf("import: users of tenant %s: %w", a.TenantID, err)
	}
	ri := &RecordImport{svc: s, actor: a, users: map[string]*models.User{}, refs: map[string]string{}}
	for i := range users {
		u := &users[i]
		ri.users[strings.ToLower(u.Email)] = u
		name := strings.ToLower(models.NormalizeText(u.Name))
		if _, taken := ri.users[name]; taken {
			ri.users[name] = nil
		} else {
			ri.users[name] = u
		}
		if u.ID == a.UserID {
			ri.me = u
		}
	}
	return ri, nil
}

// Location is the importer's time zone: times without an offset in the file
// are read in it.
func (ri *RecordImport) Location() *time.Location {
	if ri.me == nil {
		return time.UTC
	}
	return ri.me.Location()
}

// ImportAll stores rows[i] under ids[i] (see ImportedID) and returns each
// row's outcome and error, in order; a row imported before is skipped. Each
// record is validated and checked like any other create (the customer must
// be one the row's user may edit, a payment may not exceed what its order
// owes); with dryRun nothing is written.
//
// The outcomes are those of importing the rows one after another, but up
// to parallel rows are under way at once, so that their writes share
// commits. Each row's user, customer and order are looked up in file order
// (each reference once an import); a row then waits for every earlier row
// with its id or on the same customer or order: a record changes its
// customer (the last interaction, the balance), and a payment is checked
// against what its order owes after the payments before it.
func (ri *RecordImport) ImportAll(ctx context.Context, ids []string, rows []RecordRow, dryRun bool, parallel int) ([]RowOutcome, []error) {
	outs := make([]RowOutcome, len(rows))
	actors := make([]models.Actor, len(rows))
	order := newEntryOrder()
	enter := func(i int) ([]int, error) {
		names := []string{"id\x00" + ids[i]}
		a, parents, err := ri.resolve(ctx, rows[i])
		if err != nil {
			return order.enter(i, names), err
		}
		actors[i] = a
		for _, p := range parents {
			names = append(names, "parent\x00"+p)
		}
		return order.enter(i, names), nil
	}
	apply := func(i int) error {
		var err error
		outs[i], err = ri.importResolved(ctx, actors[i], ids[i], rows[i], dryRun)
		return err
	}
	return outs, sideBySide(len(rows), parallel, enter, apply)
}

// resolve finds who row's record is created as and fills in its customer
// (a payment: its order), and returns the records the row waits on: its
// customer, and a payment's order too (a payment changes its order's
// customer: balance and credit).
func (ri *RecordImport) resolve(ctx context.Context, row RecordRow) (a models.Actor, parents []string, err error) {
	if a, err = ri.actorFor(ctx, row.Rep); err != nil {
		return a, nil, err
	}
	switch rec := row.Record.(type) {
	case *models.Payment:
		if rec.OrderID, err = ri.orderID(ctx, row.Order); err != nil {
			return a, nil, err
		}
		customer, err := ri.orderCustomer(ctx, rec.OrderID)
		return a, []string{rec.OrderID, customer}, err
	case *models.Contact, *models.Interaction, *models.Order:
		child := rec.(interface{ SetParent(id string) })
		customer, err := ri.customerID(ctx, row.Customer)
		child.SetParent(customer)
		return a, []string{customer}, err
	}
	return a, nil, fmt.Errorf("import: cannot import a %T", row.Record)
}

// orderCustomer is the customer of order id, looked up once per import.
func (ri *RecordImport) orderCustomer(ctx context.Context, id string) (string, error) {
	return ri.remembered(ctx, "order-customer:"+id, func() (string, error) {
		o, err := ri.svc.Orders.load(ctx, ri.actor.TenantID, id)
		if err != nil {
			return "", fmt.Errorf("customer of order %s: %w", id, err)
		}
		return o.CustomerID, nil
	})
}

// importResolved stores a row resolve has filled in, as a.
func (ri *RecordImport) importResolved(ctx context.Context, a models.Actor, id string, row RecordRow, dryRun bool) (RowOutcome, error) {
	s := ri.svc
	switch rec := row.Record.(type) {
	case *models.Contact:
		return importRecord(ctx, s.Contacts, a, id, *rec, rec.CustomerID, dryRun)
	case *models.Interaction:
		return importRecord(ctx, s.Interactions, a, id, *rec, rec.CustomerID, dryRun)
	case *models.Order:
		return importRecord(ctx, s.Orders, a, id, *rec, rec.CustomerID, dryRun)
	case *models.Payment:
		return importRecord(ctx, s.Payments, a, id, *rec, "", dryRun)
	}
	return RowOutcome{}, fmt.Errorf("import: cannot import a %T", row.Record)
}

// importRecord creates rec under id unless it exists.
func importRecord[R any](ctx context.Context, r *Records[R], a models.Actor, id string, rec R, customerID string, dryRun bool) (RowOutcome, error) {
	exists, err := r.Exists(ctx, a.TenantID, id)
	if err != nil {
		return RowOutcome{}, err
	}
	if exists {
		return RowOutcome{Action: RowSkipped, CustomerID: customerID, MatchedID: id, Reason: "imported before"}, nil
	}
	var w *write[R]
	if dryRun {
		w, err = r.prepareNew(ctx, a, rec, false, id, 0)
	} else {
		w, err = r.createWrite(ctx, a, rec, false, id, 0)
	}
	if err != nil {
		return RowOutcome{}, err
	}
	if parent, ok := any(w.rec).(interface{ Parent() string }); ok {
		customerID = parent.Parent()
	}
	return RowOutcome{Action: RowCreated, CustomerID: customerID}, nil
}

// actorFor is who a row's record is created as: the importer, or the rep the
// row names (only an admin may log records for others), with the teams they
// manage if they are a manager.
func (ri *RecordImport) actorFor(ctx context.Context, rep string) (models.Actor, error) {
	rep = strings.ToLower(models.NormalizeText(rep))
	if rep == "" {
		return ri.actor, nil
	}
	u, known := ri.users[rep]
	switch {
	case !known:
		return models.Actor{}, refError("rep", fmt.Sprintf("no active user with e-mail or name %q", rep))
	case u == nil:
		return models.Actor{}, refError("rep", fmt.Sprintf("%q is the name of several users; use the e-mail", rep))
	case u.ID == ri.actor.UserID:
		return ri.actor, nil
	case ri.actor.Role != models.RoleAdmin:
		return models.Actor{}, &models.ForbiddenError{Reason: "only admins import records for other users"}
	}
	a := models.Actor{TenantID: u.TenantID, UserID: u.ID, Role: u.Role, TeamID: u.TeamID}
	if u.Role == models.RoleManager {
		teams, err := ri.svc.store.Teams(ctx, u.TenantID, u.ID)
		if err != nil {
			return a, fmt.Errorf("teams managed by %s: %w", u.ID, err)
		}
		for _, t := range teams {
			a.ManagedTeamIDs = append(a.ManagedTeamIDs, t.ID)
		}
	}
	return a, nil
}

func refError(field, msg string) error {
	return &models.ValidationError{Fields: []models.FieldError{{Field: field, Message: msg}}}
}

// customerID finds the customer a row names, trying in turn: a customer
// imported with that reference, a fieldcrm id, a customer number, a
// reference in the old system, a company's name. Whether the importer may
// add records to it is checked by the create.
func (ri *RecordImport) customerID(ctx context.Context, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", refError("customer", "is required: the customer's number, reference in the old system, or company name")
	}
	return ri.remembered(ctx, "customer:"+ref, func() (string, error) {
		s, tenant := ri.svc, ri.actor.TenantID
		for _, id := range []string{ImportedID(tenant, ImportCustomers, "ref:"+ref), ref} {
			c, err := s.Customers.load(ctx, tenant, id)
			if errors.Is(err, models.ErrNotFound) {
				continue
			}
			if err != nil {
				return "", err
			}
			if c.MergedInto != "" {
				return c.MergedInto, nil // its records live on in the customer it was merged into
			}
			if !c.Deleted() {
				return c.ID, nil
			}
		}
		keys := []string{models.NumberKey(ref), models.ExternalRefKey(ref)}
		if company := models.CompanyKey(ref); company != "" {
			keys = append(keys, "company:"+company)
		}
		for _, key := range keys {
			found, err := s.store.CustomersSharingKeys(ctx, tenant, []string{key}, "", 2)
			if err != nil {
				return "", err
			}
			switch len(found) {
			case 0:
				continue
			case 1:
				return found[0].ID, nil
			}
			return "", refError("customer", fmt.Sprintf("%q names several customers (%s, %s); use the customer number", ref, found[0].Number, found[1].Number))
		}
		return "", refError("customer", fmt.Sprintf("no customer with number, reference or company name %q", ref))
	})
}

// orderID finds the order a payment row names: one imported with that order
// number, or a fieldcrm order id.
func (ri *RecordImport) orderID(ctx context.Context, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", refError("order_no", "is required: the order's number in the old system")
	}
	return ri.remembered(ctx, "order:"+ref, func() (string, error) {
		tenant := ri.actor.TenantID
		for _, id := range []string{ImportedID(tenant, ImportOrders, "ref:"+ref), ref} {
			o, err := ri.svc.Orders.load(ctx, tenant, id)
			if errors.Is(err, models.ErrNotFound) {
				continue
			}
			if err != nil {
				return "", err
			}
			if !o.Deleted() {
				return o.ID, nil
			}
		}
		return "", refError("order_no", fmt.Sprintf("no order %q (import the orders first)", ref))
	})
}

// remembered looks a reference up once per import. Only references found
// are remembered: a missing customer may be created while the import runs.
func (ri *RecordImport) remembered(ctx context.Context, key string, find func() (string, error)) (string, error) {
	if id, ok := ri.refs[key]; ok {
		return id, nil
	}
	id, err := find()
	if err == nil && len(ri.refs) < maxRememberedRefs {
		ri.refs[key] = id
	}
	return id, err
}
