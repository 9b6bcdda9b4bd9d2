package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// everyType holds a value of each BSON type fieldcrm stores, in the shapes
// that trip a converter: escapes and non-ASCII text, nulls, empty arrays,
// arrays of mixed values, sub-documents, int32 beside int64, fractional doubles, dates.
type everyType struct {
	models.Meta `bson:",inline"`
	Text        string             `bson:"text"`
	Small       int32              `bson:"small"`
	Big         int64              `bson:"big"`
	Ratio       float64            `bson:"ratio"`
	Flag        bool               `bson:"flag"`
	Nothing     *string            `bson:"nothing"`
	When        time.Time          `bson:"when"`
	Tags        []string           `bson:"tags"`
	NoTags      []string           `bson:"no_tags"`
	Nested      map[string]any     `bson:"nested"`
	Mixed       bson.A             `bson:"mixed"`
	OID         primitive.ObjectID `bson:"oid"`
	Bytes       []byte             `bson:"bytes"`
}

// directAndViaQuery returns a store that reads from the embedded engine's
// tables, and a second store on the same database that asks FerretDB's query
// engine the same questions.
func directAndViaQuery(t *testing.T) (direct, viaQuery *store.Store) {
	ctx := context.Background()
	direct = env.Store(t)
	cfg := env.StoreConfig(t)
	cfg.Database = direct.DatabaseName()
	cfg.Tables = nil
	viaQuery, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = viaQuery.Close(ctx) })
	return direct, viaQuery
}

// The direct table reader must hand back exactly what FerretDB's own query
// answers, value for value and type for type, in the same order; and it must
// answer from the (tenant_id, seq) index, not by scanning.
func TestChangesFromTablesMatchTheQueryEngine(t *testing.T) {
	ctx := context.Background()
	direct, viaQuery := directAndViaQuery(t)

	when := time.Date(2026, 1, 5, 9, 30, 15, 123e6, time.UTC)
	insert := func(tenant string, seq int64, deleted bool) {
		t.Helper()
		m := models.Meta{ID: models.NewID(), TenantID: tenant, Version: 1, CreatedAt: when, UpdatedAt: when,
			Seq: seq, FieldSeqs: map[string]int64{"id": seq, "text": seq}}
		if deleted {
			d := when.Add(time.Hour)
			m.DeletedAt = &d
		}
		doc := everyType{Meta: m, Text: "quote \" back\\slash 中文\n\ttab", Small: -7, Big: 1 << 53, Ratio: 0.1 + float64(seq),
			Flag: seq%2 == 0, When: when, Tags: []string{"a", "b"}, NoTags: []string{},
			Nested: map[string]any{"city": "上海", "geo": bson.D{{Key: "lat", Value: 31.2}, {Key: "lng", Value: 121.5}}, "none": nil},
			Mixed:  bson.A{int32(1), "x", bson.D{{Key: "k", Value: false}, {Key: "empty", Value: bson.A{}}}, 2.5, when, nil},
			OID:    primitive.NewObjectID(), Bytes: []byte{0, 1, 254, 255}}
		if err := direct.Insert(ctx, store.Tasks, &m, doc, models.AuditEntry{Action: "create"}); err != nil {
			t.Fatal(err)
		}
	}
	for seq := int64(1); seq <= 6; seq++ {
		insert("t1", seq*10, seq == 3)
	}
	insert("t2", 25, false)

	read := func(st *store.Store, after, upTo int64, limit int) []bson.D {
		t.Helper()
		var out []bson.D
		if err := st.Changes(ctx, store.Tasks, "t1", after, upTo, limit, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	seqs := func(docs []bson.D) []int64 {
		var out []int64
		for _, d := range docs {
			out = append(out, d.Map()["seq"].(int64))
		}
		return out
	}
	for _, c := range []struct {
		after, upTo int64
		limit       int
		want        []int64
	}{
		{0, 100, 100, []int64{10, 20, 30, 40, 50, 60}},
		{10, 50, 100, []int64{20, 30, 40, 50}},
		{10, 50, 2, []int64{20, 30}},
		{60, 100, 100, nil},
	} {
		got, want := read(direct, c.after, c.upTo, c.limit), read(viaQuery, c.after, c.upTo, c.limit)
		if !reflect.DeepEqual(seqs(got), c.want) {
			t.Fatalf("(%d, %d] limit %d: direct read seqs %v, want %v", c.after, c.upTo, c.limit, seqs(got), c.want)
		}
		if (len(got) > 0 || len(want) > 0) && !reflect.DeepEqual(got, want) {
			t.Fatalf("(%d, %d]: direct read differs from the query engine:\n%v\n%v", c.after, c.upTo, got, want)
		}
	}

	for tenant, want := range map[string]int64{"t1": 60, "t2": 25, "none": 0} {
		for _, st := range []*store.Store{direct, viaQuery} {
			if got, err := st.HighestSeq(ctx, tenant); err != nil || got != want {
				t.Fatalf("highest seq of %s: %d, %v; want %d", tenant, got, err, want)
			}
		}
	}

	var typed []everyType
	if err := direct.Changes(ctx, store.Tasks, "t1", 0, 20, 10, &typed); err != nil {
		t.Fatal(err)
	}
	if len(typed) != 2 || !typed[0].When.Equal(when) || typed[1].Nested["city"] != "上海" || typed[0].Text != "quote \" back\\slash 中文\n\ttab" {
		t.Fatalf("typed read: %+v", typed)
	}

	if env.SQLiteDir() != "" {
		plan, err := direct.ExplainChanges(ctx, store.Tasks)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "_fieldcrm_sync") || strings.Contains(plan, "TEMP B-TREE") {
			t.Fatalf("changes are not read from the (tenant_id, seq) index:\n%s", plan)
		}
	}
}

// On the embedded engines, single-document reads and writes by _id skip FerretDB
// (see embedded.Tables). What they write must read back through FerretDB
// exactly as written, what FerretDB wrote must read back directly, and a
// second insert of an _id must still fail: version claims rest on it.
func TestDirectWritesAndFerretDBReadEachOthersDocuments(t *testing.T) {
	ctx := context.Background()
	direct := env.Store(t)
	viaFerret := throughFerretDB(t, direct)

	when := time.Date(2026, 3, 1, 8, 0, 0, 5e6, time.UTC)
	doc := func(text string, version int64) everyType {
		m := models.Meta{ID: "rec-<&>-1", TenantID: "t1", Version: version, CreatedAt: when, UpdatedAt: when, Seq: version}
		return everyType{Meta: m, Text: text, Small: 3, Big: -1 << 40, Ratio: 1.5e-7, Flag: true, When: when,
			Tags: []string{"x"}, NoTags: []string{}, Nested: map[string]any{"a": bson.D{{Key: "empty", Value: bson.D{}}, {Key: "b", Value: bson.A{int64(1), "two"}}}},
			Mixed: bson.A{nil, true}, OID: primitive.NewObjectID(), Bytes: []byte("\x00bin")}
	}
	read := func(st *store.Store) bson.D {
		t.Helper()
		var out bson.D
		if err := st.Get(ctx, store.Tasks, "t1", "rec-<&>-1", &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	v1 := doc("written directly <b>&amp;</b> 中文", 1)
	if err := direct.Insert(ctx, store.Tasks, &v1.Meta, v1, models.AuditEntry{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	var written bson.D
	raw, _ := bson.Marshal(v1)
	if err := bson.Unmarshal(raw, &written); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*store.Store{"FerretDB": viaFerret, "the direct reader": direct} {
		if got := read(st); !reflect.DeepEqual(got, written) {
			t.Fatalf("%s reads a directly written document differently:\n%v\n%v", name, got, written)
		}
	}
	if err := direct.Insert(ctx, store.Tasks, &v1.Meta, v1, models.AuditEntry{Action: "create"}); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("second insert of one _id: %v, want ErrConflict", err)
	}
	if err := viaFerret.Insert(ctx, store.Tasks, &v1.Meta, v1, models.AuditEntry{Action: "create"}); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("FerretDB inserted an _id written directly: %v", err)
	}

	v2 := doc("written by FerretDB", 2)
	if err := viaFerret.Commit(ctx, store.Tasks, &v2.Meta, v2, models.AuditEntry{Action: "update"}); err != nil {
		t.Fatal(err)
	}
	if got, want := read(direct), read(viaFerret); !reflect.DeepEqual(got, want) || got.Map()["text"] != "written by FerretDB" {
		t.Fatalf("direct read of FerretDB's write:\n%v\n%v", got, want)
	}
	// Version 2 was claimed through FerretDB: a direct commit of it must lose.
	if err := direct.Commit(ctx, store.Tasks, &v2.Meta, v2, models.AuditEntry{Action: "update"}); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("direct commit of a claimed version: %v, want ErrConflict", err)
	}
	// A version of a record that does not exist: the claim goes with the
	// failed write, in one transaction.
	ghost := doc("ghost", 2)
	ghost.ID = "ghost"
	if err := direct.Commit(ctx, store.Tasks, &ghost.Meta, ghost, models.AuditEntry{Action: "update"}); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("commit of a missing record: %v, want ErrConflict", err)
	}
	if entries, err := direct.Audit(ctx, "t1", store.Tasks, "ghost", nil, 10); err != nil || len(entries) != 0 {
		t.Fatalf("a failed commit left its claim: %v %v", entries, err)
	}
	v3 := doc("third", 3)
	if err := direct.Commit(ctx, store.Tasks, &v3.Meta, v3, models.AuditEntry{Action: "update"}); err != nil {
		t.Fatal(err)
	}
	if got := read(viaFerret); got.Map()["text"] != "third" || got.Map()["version"] != int64(3) {
		t.Fatalf("FerretDB reads %v after a direct commit", got)
	}
}

// A customer's records and an order's payments (store.Find with one equality
// on customer_id or order_id) come from the embedded engine's index of it:
// the same records, in the same order, as FerretDB's query engine finds.
func TestLookupsFromTablesMatchTheQueryEngine(t *testing.T) {
	ctx := context.Background()
	direct, viaQuery := directAndViaQuery(t)
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for i, p := range []struct{ tenant, customer, order string }{
		{"t1", "c1", "o1"}, {"t1", "c1", "o2"}, {"t1", "c2", "o1"}, {"t2", "c1", "o1"}, {"t1", "c1", "o1"}, {"t1", "c1", "o1"},
	} {
		m := models.Meta{ID: models.IDFor("pay", string(rune('a'+i))), TenantID: p.tenant, Version: 1, CreatedAt: at, UpdatedAt: at, Seq: int64(i + 1)}
		if i == 5 {
			m.DeletedAt = &at
		}
		pay := models.Payment{Meta: m, ChildFields: models.ChildFields{CustomerID: p.customer}, OrderID: p.order, Method: "cash", PaidAt: at, Amount: int64(100 * (i + 1))}
		if err := direct.Insert(ctx, store.Payments, &pay.Meta, &pay, models.AuditEntry{Action: "create"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []models.Query{
		{Tenant: "t1", Scope: models.Scope{All: true}, Conds: []models.Cond{{Field: "customer_id", Op: models.OpEq, Value: "c1"}}},
		{Tenant: "t1", Scope: models.Scope{All: true}, Conds: []models.Cond{{Field: "order_id", Op: models.OpEq, Value: "o1"}}},
		{Tenant: "t1", Scope: models.Scope{All: true}, Conds: []models.Cond{{Field: "order_id", Op: models.OpEq, Value: "o1"}}, WithDeleted: true},
		{Tenant: "t1", Scope: models.Scope{All: true}, Conds: []models.Cond{{Field: "customer_id", Op: models.OpEq, Value: "c1"}}, Limit: 2},
		{Tenant: "t2", Scope: models.Scope{All: true}, Conds: []models.Cond{{Field: "customer_id", Op: models.OpEq, Value: "c9"}}},
	} {
		var got, want []models.Payment
		if err := direct.Find(ctx, store.Payments, q, &got); err != nil {
			t.Fatal(err)
		}
		if err := viaQuery.Find(ctx, store.Payments, q, &want); err != nil {
			t.Fatal(err)
		}
		if (len(got) > 0 || len(want) > 0) && !reflect.DeepEqual(got, want) {
			t.Fatalf("%+v: direct %+v\nquery engine %+v", q, got, want)
		}
	}
	var three []models.Payment
	q := models.Query{Tenant: "t1", Scope: models.Scope{All: true}, Conds: []models.Cond{{Field: "customer_id", Op: models.OpEq, Value: "c1"}}}
	if err := direct.Find(ctx, store.Payments, q, &three); err != nil || len(three) != 3 {
		t.Fatalf("c1's live payments in t1: %d, %v", len(three), err)
	}
	if env.SQLiteDir() != "" {
		plan, err := direct.ExplainFind(ctx, store.Payments, models.Query{Tenant: "t1", Scope: models.Scope{All: true},
			Conds: []models.Cond{{Field: "order_id", Op: models.OpEq, Value: "o1"}}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "_fieldcrm_q_order ") || strings.Contains(plan, "TEMP B-TREE") {
			t.Fatalf("payments of an order are not read from the (tenant_id, order_id) index:\n%s", plan)
		}
	}
}

// throughFerretDB opens direct's database a second time with the embedded
// engine's direct reads and writes turned off, so that every query and write
// goes through FerretDB: the two paths can then be compared or raced.
func throughFerretDB(t *testing.T, direct *store.Store) *store.Store {
	t.Helper()
	ctx := context.Background()
	cfg := env.StoreConfig(t)
	cfg.Database = direct.DatabaseName()
	cfg.Tables, cfg.ByID = nil, nil
	viaFerret, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = viaFerret.Close(ctx) })
	return viaFerret
}

// A pull reads what it may send from the (tenant_id, seq) index, in
// sync-number order: a first sync the live records the actor sees, the same
// records as the query engine finds and a filter in Go of every change
// keeps; a later pull also deleted records and those with an earlier owner.
func TestChangesSeenAreWhatAPullMaySend(t *testing.T) {
	ctx := context.Background()
	direct := env.Store(t)
	viaFerret := throughFerretDB(t, direct)
	gone := time.Now().UTC()
	var all []models.Task
	for i := range 40 {
		m := models.Meta{ID: fmt.Sprintf("task-%02d", i), TenantID: "t1", Version: 1, Seq: int64(10 + i),
			OwnerID: []string{"rep1", "rep2", "rep3", ""}[i%4], TeamID: []string{"east", "east", "west", ""}[i%4]}
		if i%7 == 3 {
			m.DeletedAt = &gone
		}
		if i%5 == 2 {
			m.Former = []models.Ownership{{OwnerID: "rep9", TeamID: "north"}}
		}
		if i%2 == 0 { // the others have no per-field maps
			m.FieldSeqs = map[string]int64{"assignee_id": m.Seq, "id": m.Seq - 5, "title": m.Seq - 1}
			m.FieldDevices = map[string]string{"assignee_id": "phone-b", "id": fmt.Sprintf("phone-%d", i)}
		}
		task := models.Task{Meta: m, AssigneeID: []string{"rep1", "rep3", "rep2"}[i%3]}
		if err := direct.Insert(ctx, store.Tasks, &task.Meta, task, models.AuditEntry{Action: "create"}); err != nil {
			t.Fatal(err)
		}
		all = append(all, task)
	}
	other := models.Task{Meta: models.Meta{ID: "elsewhere", TenantID: "t2", Version: 1, Seq: 15, OwnerID: "rep1"}}
	if err := direct.Insert(ctx, store.Tasks, &other.Meta, other, models.AuditEntry{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	ids := func(tasks []models.Task) []string {
		var out []string
		for _, task := range tasks {
			out = append(out, task.ID)
		}
		return out
	}
	for _, c := range []struct {
		name       string
		scope      models.Scope
		orAssignee string
		after      int64
		limit      int
	}{
		{"a rep", models.Scope{OwnerIDs: []string{"rep1"}}, "", 0, 100},
		{"a rep and what is assigned to them", models.Scope{OwnerIDs: []string{"rep3"}}, "rep3", 0, 100},
		{"a manager", models.Scope{OwnerIDs: []string{"boss"}, TeamIDs: []string{"east"}}, "", 12, 100},
		{"an admin, a page of 5", models.Scope{All: true}, "", 0, 5},
		{"a rep, a page of 3 after 20", models.Scope{OwnerIDs: []string{"rep2"}}, "rep2", 20, 3},
	} {
		for _, live := range []bool{true, false} {
			var want []models.Task
			for _, task := range all {
				sees := c.scope.All || slices.Contains(c.scope.OwnerIDs, task.OwnerID) || slices.Contains(c.scope.TeamIDs, task.TeamID) ||
					(c.orAssignee != "" && task.AssigneeID == c.orAssignee)
				sends := sees && !task.Deleted()
				switch {
				case !live && env.DriverOnly(): // MongoDB returns every change (see ChangesSeen)
					sends = true
				case !live:
					sends = sees || len(task.Former) > 0
				}
				if task.Seq > c.after && sends && len(want) < c.limit {
					want = append(want, task)
				}
			}
			stores := map[string]*store.Store{"direct": direct}
			if live { // through the driver a later pull's read is every change
				stores["through FerretDB"] = viaFerret
			}
			for name, st := range stores {
				var got []models.Task
				if err := st.ChangesSeen(ctx, store.Tasks, "t1", c.after, 100, c.limit, c.scope, c.orAssignee, live, &got); err != nil {
					t.Fatalf("%s (live %t), %s: %v", c.name, live, name, err)
				}
				if !slices.Equal(ids(got), ids(want)) {
					t.Fatalf("%s (live %t), %s: %v, want %v", c.name, live, name, ids(got), ids(want))
				}
				// What a pull reads of the per-field maps (the embedded
				// engines leave out the rest).
				for i, task := range got {
					if task.FieldSeqs["id"] != want[i].FieldSeqs["id"] || task.FieldDevices["id"] != want[i].FieldDevices["id"] {
						t.Fatalf("%s (live %t), %s: %s created at %d by %q, want %d by %q", c.name, live, name, task.ID,
							task.FieldSeqs["id"], task.FieldDevices["id"], want[i].FieldSeqs["id"], want[i].FieldDevices["id"])
					}
				}
			}
			if env.SQLiteDir() != "" {
				plan, count, err := direct.ExplainChangesSeen(ctx, store.Tasks, c.scope, c.orAssignee, live)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(plan, "_fieldcrm_sync") || strings.Contains(plan, "TEMP B-TREE") {
					t.Fatalf("%s (live %t): not read from the (tenant_id, seq) index:\n%s", c.name, live, plan)
				}
				// What the pull tests is in the index's entries: SQLite
				// reads a record only when its entry passes.
				if !strings.Contains(count, "COVERING INDEX") || !strings.Contains(count, "_fieldcrm_sync") {
					t.Fatalf("%s (live %t): the conditions are not all on the index's entries:\n%s", c.name, live, count)
				}
			}
		}
	}
}

// Each hands over every record q selects, in q's order, and stops at the
// first error its callback returns (the reader runs ahead in a goroutine of
// its own on the embedded engines).
func TestEachHandsOverEveryRecordInOrderAndStopsAtAnError(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	var want []string
	for i := range 600 {
		task := models.Task{Meta: models.Meta{ID: fmt.Sprintf("task-%03d", i), TenantID: "t1", Version: 1, Seq: int64(i + 1), OwnerID: "rep1"}}
		if err := st.Insert(ctx, store.Tasks, &task.Meta, task, models.AuditEntry{Action: "create"}); err != nil {
			t.Fatal(err)
		}
		want = append(want, task.ID)
	}
	q := models.Query{Tenant: "t1", Scope: models.Scope{All: true}, SortField: "_id"}
	var got []string
	err := st.Each(ctx, store.Tasks, q, func(decode func(out any) error) error {
		var task models.Task
		if err := decode(&task); err != nil {
			return err
		}
		got = append(got, task.ID)
		return nil
	})
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("each: %d records (%v), want %d in order", len(got), err, len(want))
	}
	stop := errors.New("enough")
	calls := 0
	err = st.Each(ctx, store.Tasks, q, func(func(out any) error) error {
		if calls++; calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("an error from the third record: %v after %d calls", err, calls)
	}
}
