package store

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// QueryReader answers a models.Query without the query engine: what
// embedded.Tables does for FerretDB, which answers any query but {_id} by
// decoding every document of the collection.
type QueryReader interface {
	// Find calls each with every document q selects, in q's order; it
	// returns embedded.ErrUntranslatable, having read nothing, for a query
	// it cannot express.
	Find(ctx context.Context, coll string, fields embedded.Fields, q models.Query, each func(bson.Raw) error) error
	// IndexQueries creates the indexes of queryIndexes it lacks and says
	// how many it created.
	IndexQueries(ctx context.Context, indexes map[string][]embedded.Index, fields map[string]embedded.Fields) (int, error)
	// Analyze refreshes the statistics the engine's planner picks indexes by.
	Analyze(ctx context.Context) error
}

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
// Each ends in _id, the order of ties, so that a filtered page in the
// default order is read straight off the index.
var queryIndexes = func() map[string][]embedded.Index {
	ix := func(name string, fields ...string) embedded.Index {
		return embedded.Index{Name: name, Fields: append(append([]string{"tenant_id"}, fields...), "_id")}
	}
	// Every record: its owner's and team's (visibility), newest changes.
	owned := []embedded.Index{ix("all"), ix("owner", "owner_id"), ix("team", "team_id"),
		ix("updated", "updated_at"), ix("created", "created_at")}
	child := append([]embedded.Index{ix("customer", "customer_id")}, owned...)
	with := func(base []embedded.Index, more ...embedded.Index) []embedded.Index {
		return append(append([]embedded.Index{}, base...), more...)
	}
	// Tallies (the reports' counts and sums) read an index that holds every
	// field they use, so that the engines that can answer from index
	// entries alone read no record (see Store.Tally). Each starts with the
	// conditions every tally has (its tenant, live records), then its
	// period if it has one, then what the actor may see.
	tally := func(name string, fields ...string) embedded.Index {
		return embedded.Index{Name: "tally_" + name, Fields: append([]string{"tenant_id", "deleted_at"}, fields...)}
	}
	return map[string][]embedded.Index{
		Customers: with(owned,
			tally("base", "owner_id", "team_id", "stage", "customer_type", "source", "region", "industry", "value_tier",
				"credit.rating", "loyalty.tier", "last_interaction_at", "credit.outstanding", "number", "name", "_id"),
			tally("created", "created_at", "owner_id", "team_id"),
			ix("stage", "stage"), ix("type", "customer_type"), ix("source", "source"), ix("region", "region"),
			ix("industry", "industry"), ix("tier", "value_tier"), ix("credit", "credit.rating"),
			ix("duplicate", "duplicate"), ix("number", "number"), ix("name", "name"),
			ix("last_interaction", "last_interaction_at"), ix("assigned", "assigned_at"),
			// Arrays: MongoDB indexes their items (search_keys has its
			// index from migration 2); the embedded engines keep theirs by
			// the fields' kinds (see embedded.Terms).
			embedded.Index{Name: "tags", Fields: []string{"tenant_id", "tags"}}),
		Contacts: child,
		Interactions: with(child, ix("channel", "channel"), ix("author", "created_by"), ix("occurred", "occurred_at"),
			tally("occurred", "occurred_at", "owner_id", "team_id", "created_by", "channel", "check_in.lat")),
		Tasks: with(child, ix("assignee", "assignee_id"), ix("status", "status"), ix("due", "due_at")),
		Orders: with(child, ix("status", "status"), ix("ordered", "ordered_on"), ix("amount", "amount"),
			tally("ordered", "ordered_on", "owner_id", "team_id", "currency", "status", "customer_id", "amount")),
		Payments: with(child, ix("order", "order_id"), ix("method", "method"), ix("paid", "paid_at")),
		Tickets: with(child, ix("assignee", "assignee_id"), ix("status", "status"), ix("priority", "priority"),
			ix("type", "type"), ix("sla", "sla_due_at")),
		Surveys:        with(child, ix("taken", "taken_at")),
		LoyaltyEntries: with(child, ix("kind", "kind"), tally("points", "created_at", "owner_id", "team_id", "kind", "points")),
		Conflicts:      with(owned, ix("record", "record_id"), ix("table", "table"), ix("resolved", "resolved_at")),
		Notifications: with(owned, ix("user", "user_id"), ix("task", "task_id"), ix("read", "read_at"),
			ix("kind", "kind")),
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
	err = direct.Find(ctx, coll, fields, q, each)
	if errors.Is(err, embedded.ErrUntranslatable) {
		return false, nil
	}
	return true, err
}

// indexQueries is migration 12: every query shape of queryIndexes gets its
// index on MongoDB (the embedded engines get theirs at start-up, see
// Migrate). A database copied from the embedded engines to MongoDB would
// arrive without them, its migration recorded as done: whoever writes a
// tool for that move must create them.
//
// Migration 13 gives MongoDB the tally indexes (tallies true), which 12
// leaves out.
func indexQueries(ctx context.Context, s *Store, tallies bool) error {
	if s.tables != nil {
		// The embedded engines read lists through their own expression
		// indexes; FerretDB's would only cost every write.
		return nil
	}
	for coll, list := range queryIndexes {
		var indexes []index
		for _, ix := range list {
			if strings.HasPrefix(ix.Name, "tally_") == tallies {
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
