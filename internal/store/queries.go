package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// QueryReader answers a models.Query without the query engine: what
// embedded.Tables does for FerretDB, which answers any query but {_id} by
// decoding every document of the collection.
type QueryReader interface {
	// Find calls each with every document q selects, in q's order; it
	// returns embedded.ErrUntranslatable, having read nothing, for a query
	// it cannot express. hints name the indexes that answer it (see
	// hintsFor); none lets the engine choose.
	Find(ctx context.Context, coll string, fields embedded.Fields, q models.Query, hints embedded.Hints, each func(bson.Raw) error) error
	// IndexQueries creates the indexes of queryIndexes it lacks and says
	// how many it created.
	IndexQueries(ctx context.Context, indexes map[string][]embedded.Index, fields map[string]embedded.Fields) (int, error)
	// Analyze refreshes the statistics the engine's planner picks indexes by.
	Analyze(ctx context.Context) error
}

// The embedded engines' tables answer queries; the store finds that out at
// run time (a failed assertion would send every query to FerretDB's scan),
// so the compiler checks it here.
var _ QueryReader = (*embedded.Tables)(nil)

// Analyze refreshes the query planner's statistics on the embedded engines,
// after a bulk load (an import, a benchmark's seeding) changed how many
// records hold each value; they are also refreshed every few minutes. It
// does nothing on MongoDB.
func (s *Store) Analyze(ctx context.Context) error {
	if direct, ok := s.tables.(QueryReader); ok {
		return direct.Analyze(ctx)
	}
	return nil
}

// queryIndexes are the indexes behind every list, filter and sort the API
// offers, and the lookups of jobs: one description for every engine.
// MongoDB gets them as compound indexes (migration 12); the embedded engines
// as expression indexes over the same fields, created at every start-up.
// The plain ones end in _id, the order of ties, so that a filtered page in
// the default order is read straight off the index; the span and tally
// indexes hold more after it (see below).
var queryIndexes = func() map[string][]embedded.Index {
	ix := func(name string, fields ...string) embedded.Index {
		return embedded.Index{Name: name, Fields: append(append([]string{"tenant_id"}, fields...), "_id")}
	}
	deleted := ix("purge_deleted", "deleted_at")
	deleted.Deleted = true
	// Every record: its owner's and team's (visibility), newest changes,
	// and the deleted ones by when (the purge of old tombstones, see
	// Store.Tombstones).
	owned := []embedded.Index{ix("all"), ix("owner", "owner_id"), ix("team", "team_id"),
		ix("updated", "updated_at"), ix("created", "created_at"), deleted}
	child := append([]embedded.Index{ix("customer", "customer_id")}, owned...)
	with := func(base []embedded.Index, more ...embedded.Index) []embedded.Index {
		return append(append([]embedded.Index{}, base...), more...)
	}
	without := func(base []embedded.Index, name string) []embedded.Index {
		return slices.DeleteFunc(slices.Clone(base), func(ix embedded.Index) bool { return ix.Name == name })
	}
	// Ranges (a period, listed in another order: by id): a page is read
	// from the entries of the period's index, which hold, after the period
	// and the id, what every list tests (live records, what the actor may
	// see) and the filters that go with the period, so that the ids of the
	// page are found before any record is read (see pageIndex). Without
	// them SQLite read and sorted every record of the period: about a
	// second for a month of 500,000 interactions.
	span := func(name, field string, more ...string) embedded.Index {
		return embedded.Index{Name: "span_" + name,
			Fields: append([]string{"tenant_id", field, "_id", "deleted_at", "owner_id", "team_id"}, more...)}
	}
	// Tallies (the reports' counts and sums) read an index that holds every
	// field they use, so that the engines that can answer from index
	// entries alone read no record (see Store.Tally). Each starts with the
	// conditions every tally has (its tenant, live records), then its
	// period if it has one, then what the actor may see.
	tally := func(name string, fields ...string) embedded.Index {
		return embedded.Index{Name: "tally_" + name, Fields: append([]string{"tenant_id", "deleted_at"}, fields...)}
	}
	// The collections searched by substring or by tag list their records in
	// id order from an index that holds what every list tests, so that a
	// search for a common word reads the first records the actor sees in
	// order and stops at a full page (see pageIndex).
	liveAll := span("all", "_id")
	liveAll.Fields = slices.Delete(liveAll.Fields, 2, 3) // _id once
	return map[string][]embedded.Index{
		Customers: with(without(without(owned, "updated"), "all"), liveAll, span("updated", "updated_at"),
			tally("base", "owner_id", "team_id", "stage", "customer_type", "source", "region", "industry", "value_tier",
				"credit.rating", "loyalty.tier", "last_interaction_at", "credit.outstanding", "number", "name", "_id"),
			tally("created", "created_at", "owner_id", "team_id"),
			ix("stage", "stage"), ix("type", "customer_type"), ix("source", "source"), ix("region", "region"),
			ix("industry", "industry"), ix("tier", "value_tier"), ix("credit", "credit.rating"),
			ix("duplicate", "duplicate"), ix("number", "number"), ix("name", "name"),
			ix("last_interaction", "last_interaction_at"), ix("assigned", "assigned_at"),
			// The customers holding points: the few whose balance may not
			// count an entry yet (see crm.Service.SettleHolds).
			ix("flag_held", "loyalty.held"),
			// Arrays: MongoDB indexes their items (search_keys has its
			// index from migration 2); the embedded engines keep theirs by
			// the fields' kinds (see embedded.Terms).
			embedded.Index{Name: "tags", Fields: []string{"tenant_id", "tags"}}),
		Contacts: with(without(child, "all"), liveAll),
		Interactions: with(without(child, "all"), liveAll, ix("channel", "channel"), ix("author", "created_by"),
			span("occurred", "occurred_at", "channel", "created_by", "customer_id"),
			tally("occurred", "occurred_at", "owner_id", "team_id", "created_by", "channel", "check_in.lat")),
		Tasks: with(child, ix("assignee", "assignee_id"), ix("status", "status"),
			span("due", "due_at", "assignee_id", "status", "customer_id"),
			// The activity report's follow-ups: done on time, late or
			// overdue from the due and completion times alone.
			tally("due", "due_at", "owner_id", "team_id", "assignee_id", "status", "completed_at")),
		Orders: with(child, ix("status", "status"), span("ordered", "ordered_on", "status", "customer_id"), ix("amount", "amount"),
			tally("ordered", "ordered_on", "owner_id", "team_id", "currency", "status", "customer_id", "amount")),
		Payments: with(child, ix("order", "order_id"), ix("method", "method"), span("paid", "paid_at", "method", "order_id", "customer_id")),
		Tickets: with(child, ix("assignee", "assignee_id"), ix("status", "status"), ix("priority", "priority"),
			ix("type", "type"), span("sla", "sla_due_at", "assignee_id", "status", "priority", "type", "customer_id")),
		Surveys:        with(child, span("taken", "taken_at", "customer_id")),
		LoyaltyEntries: with(child, ix("kind", "kind"), tally("points", "created_at", "owner_id", "team_id", "kind", "points")),
		Conflicts:      with(owned, ix("record", "record_id"), ix("table", "table"), ix("resolved", "resolved_at")),
		Notifications: with(owned, ix("user", "user_id"), ix("task", "task_id"), ix("read", "read_at"),
			ix("kind", "kind")),
		// The audit log, newest first: the tenant's, a collection's, a
		// record's (Store.Audit, Store.AuditOf).
		collAudit: {ix("audit_at", "at"), ix("audit_collection", "collection", "at"), ix("audit_record", "record_id", "at")},
	}
}()

// Index is one of the indexes of queryIndexes: its name and fields.
type Index = embedded.Index

// QueryIndexes returns, by collection, the indexes behind the lists, filters
// and sorts: what every engine gets (see queryIndexes).
func QueryIndexes() map[string][]Index {
	out := make(map[string][]Index, len(queryIndexes))
	for coll, list := range queryIndexes {
		out[coll] = slices.Clone(list)
	}
	return out
}

// SearchedFields returns, by collection, the fields searched by substring
// through an index of their own (see embedded.SearchText): a substring has
// no place in a sorted index.
func SearchedFields() map[string][]string {
	out := map[string][]string{}
	for coll, fields := range queryFields {
		for f, k := range fields {
			if k == embedded.SearchTerms || k == embedded.SearchText {
				out[coll] = append(out[coll], f)
			}
		}
	}
	return out
}

// queryFields are the kinds of the stored fields of each record collection,
// read from the models' bson tags.
var queryFields = map[string]embedded.Fields{
	Customers:    withKinds(fieldsOf(models.Customer{}), embedded.Fields{"tags": embedded.Terms, "search_keys": embedded.SearchTerms}),
	Contacts:     withKinds(fieldsOf(models.Contact{}), embedded.Fields{"name": embedded.SearchText}),
	Interactions: withKinds(fieldsOf(models.Interaction{}), embedded.Fields{"content": embedded.SearchText}),
	Tasks:        fieldsOf(models.Task{}),
	Orders:       fieldsOf(models.Order{}), Payments: fieldsOf(models.Payment{}),
	Tickets: fieldsOf(models.Ticket{}), Surveys: fieldsOf(models.Survey{}),
	LoyaltyEntries: fieldsOf(models.LoyaltyEntry{}), Conflicts: fieldsOf(models.Conflict{}),
	Notifications: fieldsOf(models.Notification{}),
	collAudit:     fieldsOf(models.AuditEntry{}),
}

var timeType = reflect.TypeFor[time.Time]()

// withKinds sets the kinds of some fields: the arrays whose items are
// indexed (Terms), the search keys, stored in lower case and searched by
// substring (SearchTerms), and text searched by substring (SearchText).
func withKinds(fields, kinds embedded.Fields) embedded.Fields {
	for f, k := range kinds {
		fields[f] = k
	}
	return fields
}

// fieldsOf lists the fields of a record type by their bson names, with
// their kinds; nested structs add their fields dotted.
func fieldsOf(rec any) embedded.Fields {
	fields := embedded.Fields{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("bson"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if strings.Contains(opts, "inline") {
				walk(ft, prefix)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			name = prefix + name
			switch {
			case ft == timeType:
				fields[name] = embedded.Time
			case ft.Kind() == reflect.String:
				fields[name] = embedded.Text
			case ft.Kind() >= reflect.Int && ft.Kind() <= reflect.Float64:
				fields[name] = embedded.Number
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
				fields[name] = embedded.TextList
			case ft.Kind() == reflect.Struct:
				fields[name] = embedded.Object
				walk(ft, name+".")
			default:
				fields[name] = embedded.Object
			}
		}
	}
	walk(reflect.TypeOf(rec), "")
	return fields
}

// findDirect answers q from the SQL tables when the engine has them and the
// query translates; ok is false when the caller must ask the query engine.
func (s *Store) findDirect(ctx context.Context, coll string, q models.Query, each func(bson.Raw) error) (ok bool, err error) {
	direct, isReader := s.tables.(QueryReader)
	fields, known := queryFields[coll]
	if !isReader || !known {
		return false, nil
	}
	operation := "direct_find"
	if q.Limit <= 0 {
		operation = "direct_stream" // every record q selects: an export
	}
	ctx, done := s.observe(ctx, operation)
	err = direct.Find(ctx, coll, fields, q, hintsFor(coll, q), each)
	done(err)
	if errors.Is(err, embedded.ErrUntranslatable) {
		return false, nil
	}
	return true, err
}

// hintsFor names the indexes the embedded engines read q through (see
// embedded.Hints).
func hintsFor(coll string, q models.Query) embedded.Hints {
	return embedded.Hints{Page: pageIndex(coll, q), Flags: flagIndexes[coll]}
}

// flagIndexes are, by collection and field, the indexes of the flags: the
// objects (a customer's duplicate mark) listed by whether a record has them.
var flagIndexes = func() map[string]map[string]string {
	out := map[string]map[string]string{}
	for coll, list := range queryIndexes {
		for _, ix := range list {
			if len(ix.Fields) != 3 || ix.Fields[2] != "_id" {
				continue
			}
			if queryFields[coll][ix.Fields[1]] == embedded.Object {
				if out[coll] == nil {
					out[coll] = map[string]string{}
				}
				out[coll][ix.Fields[1]] = ix.Name
			}
		}
	}
	return out
}()

// pageIndex names the span index of coll (see queryIndexes) that holds every
// field a page of q uses, when q takes a range of the index's field and is
// listed in another order; "" otherwise. Such a page is read from that
// index's entries first (the engines that can), then its records by id.
func pageIndex(coll string, q models.Query) string {
	if q.Limit <= 0 {
		return ""
	}
	ranged := ""
	used := []string{"tenant_id", "_id"}
	for _, c := range q.Conds {
		switch {
		case c.Op == models.OpGt || c.Op == models.OpGte || c.Op == models.OpLt || c.Op == models.OpLte:
			ranged = c.Field
		case embedded.Walked(queryFields[coll], c):
			continue // tested on the record (see embedded.Tables.Find)
		}
		used = append(used, c.Field)
	}
	if searched(coll, q) {
		if q.SortField != "" && q.SortField != "_id" {
			return ""
		}
		ranged = "_id" // the search reads the list in id order (span_all)
	}
	if ranged == "" || ranged == q.SortField {
		return "" // no range, or one read in its index's order
	}
	if q.SortField != "" {
		used = append(used, q.SortField)
	}
	if !q.WithDeleted {
		used = append(used, "deleted_at")
	}
	if !q.Scope.All {
		used = append(used, "owner_id", "team_id")
	}
	if q.OrAssignee != "" {
		used = append(used, "assignee_id")
	}
	for _, ix := range queryIndexes[coll] {
		if strings.HasPrefix(ix.Name, "span_") && ix.Fields[1] == ranged &&
			!slices.ContainsFunc(used, func(f string) bool { return !slices.Contains(ix.Fields, f) }) {
			return ix.Name
		}
	}
	return ""
}

// searched tells a query the embedded engines may answer by walking the
// list in order (a substring search, a tag; see embedded.Walked).
func searched(coll string, q models.Query) bool {
	return slices.ContainsFunc(q.Conds, func(c models.Cond) bool { return embedded.Walked(queryFields[coll], c) })
}

// indexQueries is migration 12: every query shape of queryIndexes gets its
// index on MongoDB (the embedded engines get theirs at start-up, see
// Migrate). A database copied from the embedded engines to MongoDB would
// arrive without them, its migration recorded as done: whoever writes a
// tool for that move must create them.
//
// Later migrations give MongoDB the indexes whose names start with group:
// 13 the tally indexes ("tally_"), 14 the span indexes ("span_"), 16 the
// customers holding points ("flag_"), 19 the tombstones by deletion time
// ("purge_"), 20 the audit log ("audit_"), which 12 leaves out; an index added
// to a group later comes with a migration of its own (indexQuery).
func indexQueries(ctx context.Context, s *Store, group string) error {
	if s.tables != nil {
		// The embedded engines read lists through their own expression
		// indexes; FerretDB's would only cost every write.
		return nil
	}
	for coll, list := range queryIndexes {
		var indexes []index
		for _, ix := range list {
			if indexGroup(ix.Name) == group {
				indexes = append(indexes, index{name: "q_" + ix.Name, keys: asc(ix.Fields...)})
			}
		}
		if len(indexes) == 0 {
			continue
		}
		if err := s.ensureIndexes(ctx, coll, indexes...); err != nil {
			return err
		}
	}
	return nil
}

// indexQuery gives MongoDB the index name of coll's queryIndexes: for an
// index added after the migration of its group ran (FerretDB's
// createIndexes fails when asked again for indexes a collection has).
func indexQuery(ctx context.Context, s *Store, coll, name string) error {
	if s.tables != nil {
		return nil // as indexQueries
	}
	i := slices.IndexFunc(queryIndexes[coll], func(ix embedded.Index) bool { return ix.Name == name })
	if i < 0 {
		return fmt.Errorf("index %s of %s: not among the query indexes", name, coll)
	}
	return s.ensureIndexes(ctx, coll, index{name: "q_" + name, keys: asc(queryIndexes[coll][i].Fields...)})
}

// indexGroup is the migration group of an index of queryIndexes: the
// prefix of its name that says which migration creates it on MongoDB.
func indexGroup(name string) string {
	for _, group := range []string{"tally_", "span_", "flag_", "purge_", "audit_"} {
		if strings.HasPrefix(name, group) {
			return group
		}
	}
	return ""
}

// spannedIndexes are the indexes of migration 12 that the span indexes of
// migration 14 took the place of, by collection.
var spannedIndexes = map[string][]string{
	Customers: {"q_updated", "q_all"}, Interactions: {"q_occurred", "q_all"}, Contacts: {"q_all"}, Tasks: {"q_due"}, Orders: {"q_ordered"},
	Payments: {"q_paid"}, Tickets: {"q_sla"}, Surveys: {"q_taken"},
}

// indexSpans is migration 14: the span indexes on MongoDB, and the indexes
// they replace dropped (each would only cost every write).
func indexSpans(ctx context.Context, s *Store) error {
	if err := indexQueries(ctx, s, "span_"); err != nil || s.tables != nil {
		return err
	}
	return dropSpannedIndexes(ctx, s)
}

// dropSpannedIndexes drops, on MongoDB, the indexes of spannedIndexes that
// are there.
func dropSpannedIndexes(ctx context.Context, s *Store) error {
	for coll, names := range spannedIndexes {
		for _, name := range names {
			_, err := s.coll(coll).Indexes().DropOne(ctx, name)
			var cmdErr mongo.CommandError
			if errors.As(err, &cmdErr) && (cmdErr.Code == 27 || cmdErr.Code == 26) {
				continue // IndexNotFound, NamespaceNotFound: nothing to drop
			}
			if err != nil {
				return fmt.Errorf("drop index %s of %s: %w", name, coll, err)
			}
		}
	}
	return nil
}
