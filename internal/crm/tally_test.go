package crm_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
)

// tallyByHand is t computed here from every record of coll in t's tenant:
// the live ones (unless t asks for deleted ones too) that t's scope sees and
// its conditions select, grouped by t.By (days of t.Days), counted and
// summed; one sorted line per group.
func tallyByHand(t *testing.T, st *store.Store, coll string, tl models.Tally) []string {
	t.Helper()
	var records []bson.M
	if err := st.Find(context.Background(), coll, models.Query{Tenant: tl.Tenant, Scope: models.Scope{All: true}, WithDeleted: true}, &records); err != nil {
		t.Fatal(err)
	}
	type group struct {
		count int64
		sums  []int64
	}
	groups := map[string]*group{}
	for _, r := range records {
		if !tl.WithDeleted && testenv.Field(r, "deleted_at") != nil || !seenBy(r, tl.Scope) ||
			slices.ContainsFunc(tl.Conds, func(c models.Cond) bool { return !holds(r, c) }) {
			continue
		}
		var key []string
		for _, f := range tl.By {
			v := testenv.Field(r, f)
			if tm, ok := v.(time.Time); ok && slices.Contains(tl.Days, f) {
				v = tm.Truncate(24 * time.Hour)
			}
			key = append(key, printValue(v))
		}
		k := strings.Join(key, "|")
		if groups[k] == nil {
			groups[k] = &group{sums: make([]int64, len(tl.Sum))}
		}
		groups[k].count++
		for i, f := range tl.Sum {
			switch x := testenv.Field(r, f).(type) {
			case int64:
				groups[k].sums[i] += x
			case float64:
				groups[k].sums[i] += int64(x)
			}
		}
	}
	var out []string
	for k, g := range groups {
		out = append(out, fmt.Sprintf("%s: %d %v", k, g.count, g.sums))
	}
	slices.Sort(out)
	return out
}

// printedTally is the store's answer to t in tallyByHand's lines.
func printedTally(t *testing.T, st *store.Store, coll string, tl models.Tally) []string {
	t.Helper()
	groups, err := st.Tally(context.Background(), coll, tl)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range groups {
		var key []string
		for _, v := range g.Values {
			key = append(key, printValue(v))
		}
		out = append(out, fmt.Sprintf("%s: %d %v", strings.Join(key, "|"), g.Count, g.Sums))
	}
	slices.Sort(out)
	return out
}

// printValue prints a group's value alike whatever the engine returned.
func printValue(v any) string {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprint(int64(x))
		}
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case nil:
		return "nil"
	}
	return fmt.Sprint(v)
}

func seenBy(r bson.M, sc models.Scope) bool {
	owner, _ := testenv.Field(r, "owner_id").(string)
	team, _ := testenv.Field(r, "team_id").(string)
	return sc.All || slices.Contains(sc.OwnerIDs, owner) || slices.Contains(sc.TeamIDs, team) || sc.Pool && owner == ""
}

// holds tells whether r meets c, for the conditions of the tallies below.
func holds(r bson.M, c models.Cond) bool {
	v := testenv.Field(r, c.Field)
	compare := func(want any) int {
		switch w := want.(type) {
		case time.Time:
			got, ok := v.(time.Time)
			if !ok {
				return -2
			}
			return got.Compare(w)
		case string:
			got, ok := v.(string)
			if !ok {
				return -2
			}
			return strings.Compare(got, w)
		}
		panic(fmt.Sprintf("a condition on a %T", want))
	}
	switch c.Op {
	case models.OpEq:
		return compare(c.Value) == 0
	case models.OpIn:
		return slices.ContainsFunc(c.Value.([]string), func(s string) bool { return compare(s) == 0 })
	case models.OpGte:
		return compare(c.Value) >= 0
	case models.OpLt:
		return compare(c.Value) == -1
	}
	panic("a condition " + string(c.Op))
}

// TestTalliesMatchTheRecordsThroughWrites: the reports' tallies (on
// PostgreSQL read from the side table of tallies, on SQLite from index
// entries, on MongoDB by aggregation) equal the tallies computed here from
// the records, after creates, updates, a change of owner, soft deletes and
// a merge, which moves the absorbed customer's records.
func TestTalliesMatchTheRecordsThroughWrites(t *testing.T) {
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := testenv.NewClock(start)
	svc, p, st := newTenantWithStore(t, app.WithClock(clk.Now))
	storeUsers(t, st, p)
	ctx := context.Background()
	tenant := p.admin.TenantID
	day := func(n float64) time.Time { return start.Add(time.Duration(n * float64(24*time.Hour))) }
	q := func(sc models.Scope, conds ...models.Cond) models.Query {
		return models.Query{Tenant: tenant, Scope: sc, Conds: conds}
	}
	all := models.Scope{All: true}
	manager := models.Scope{OwnerIDs: []string{p.manager.UserID}, TeamIDs: []string{"team-1"}}
	rep := models.Scope{OwnerIDs: []string{p.rep.UserID}}
	period := func(field string, from, to any) []models.Cond {
		return []models.Cond{{Field: field, Op: models.OpGte, Value: from}, {Field: field, Op: models.OpLt, Value: to}}
	}
	tallies := []struct {
		coll string
		t    models.Tally
	}{
		{store.Customers, models.Tally{Query: q(all), By: []string{"stage", "owner_id"}, Sum: []string{"credit.outstanding"}}},
		{store.Customers, models.Tally{Query: q(manager), By: []string{"stage", "customer_type", "source", "region", "industry", "value_tier"}}},
		{store.Customers, models.Tally{Query: q(rep, models.Cond{Field: "stage", Op: models.OpIn, Value: []string{"customer", "prospect"}}),
			By: []string{"_id", "number", "name", "last_interaction_at"}}},
		{store.Customers, models.Tally{Query: q(all, period("created_at", day(6.5), day(30))...), By: []string{"created_at"}, Days: []string{"created_at"}}},
		{store.Interactions, models.Tally{Query: q(all, period("occurred_at", day(0), day(90))...),
			By: []string{"created_by", "occurred_at", "channel"}, Days: []string{"occurred_at"}}},
		{store.Interactions, models.Tally{Query: q(manager, period("occurred_at", day(2), day(90))...), By: []string{"channel"}}},
		{store.Orders, models.Tally{Query: q(all, period("ordered_on", "2026-03-01", "2026-06-01")...), By: []string{"customer_id"}, Sum: []string{"amount"}}},
	}
	check := func(when string) {
		t.Helper()
		for i, tc := range tallies {
			if index := store.TallyIndex(tc.coll, tc.t); index == "" {
				t.Fatalf("tally %d has no tally index: the comparison would not test the tallies' path", i)
			}
			if got, want := printedTally(t, st, tc.coll, tc.t), tallyByHand(t, st, tc.coll, tc.t); !slices.Equal(got, want) {
				t.Errorf("%s, tally %d of %s by %v:\n got %v\nwant %v", when, i, tc.coll, tc.t.By, got, want)
			}
		}
	}
	create := func(a models.Actor, name, stage string) string {
		c := company(name)
		c.Stage = stage
		return mustCreate(t, svc, a, c).ID
	}
	interact := func(a models.Actor, customer, channel string, at float64) string {
		t.Helper()
		i, err := svc.Interactions.Create(ctx, a, models.Interaction{ChildFields: models.ChildFields{CustomerID: customer}, Channel: channel, OccurredAt: day(at)})
		must(t, err)
		return i.ID
	}
	order := func(a models.Actor, customer string, price int64) {
		t.Helper()
		_, err := svc.Orders.Create(ctx, a, models.Order{ChildFields: models.ChildFields{CustomerID: customer},
			Items: []models.LineItem{{Product: "Pump", Quantity: 1, UnitPrice: price}}})
		must(t, err)
	}

	clk.Set(day(7))
	a := create(p.rep, "Alpha", "lead")
	b := create(p.rep2, "Beta", "prospect")
	c := create(p.otherManager, "Gamma", "customer")
	survivor := create(p.rep, "Survivor", "customer")
	absorbed := create(p.rep2, "Absorbed", "prospect")
	interact(p.rep, a, "visit", 1)
	interact(p.rep2, b, "phone", 3)
	gone := interact(p.rep2, absorbed, "visit", 4)
	interact(p.rep2, absorbed, "email", 5)
	interact(p.otherManager, c, "visit", 6)
	order(p.rep, survivor, 5000)
	order(p.rep2, absorbed, 700)
	check("after creates")

	clk.Set(day(10))
	_, err := svc.Customers.Update(ctx, p.rep, a, 0, func(dst any) error {
		dst.(*models.Customer).Stage = "customer"
		dst.(*models.Customer).Region = "North"
		return nil
	})
	must(t, err)
	_, err = svc.Interactions.Update(ctx, p.rep2, gone, 0, func(dst any) error { dst.(*models.Interaction).Channel = "phone"; return nil })
	must(t, err)
	_, err = svc.Assign(ctx, p.manager, b, p.rep.UserID)
	must(t, err)
	check("after updates and an assignment")

	clk.Set(day(20))
	must(t, svc.Customers.Delete(ctx, p.rep, a, 0))
	must(t, svc.Interactions.Delete(ctx, p.rep2, gone, 0))
	_, err = svc.Merge(ctx, p.admin, survivor, []string{absorbed})
	must(t, err)
	check("after deletes and a merge")
}
