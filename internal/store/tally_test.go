package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
)

// tallyCases are tallies of the reports' kinds over the query fixture.
func tallyCases(f queryFixture) map[string]struct {
	coll string
	t    models.Tally
} {
	manager := models.Scope{OwnerIDs: []string{"u1"}, TeamIDs: []string{"t2"}}
	rep := models.Scope{OwnerIDs: []string{"u2"}}
	all := models.Scope{All: true}
	period := func(field string, days int) []models.Cond {
		return []models.Cond{{Field: field, Op: models.OpGte, Value: f.start.Add(10 * 24 * time.Hour)},
			{Field: field, Op: models.OpLt, Value: f.start.Add(time.Duration(10+days) * 24 * time.Hour)}}
	}
	q := func(sc models.Scope, conds ...models.Cond) models.Query {
		return models.Query{Tenant: f.tenant, Scope: sc, Conds: conds}
	}
	type tc = struct {
		coll string
		t    models.Tally
	}
	return map[string]tc{
		"customers by six fields, admin": {store.Customers, models.Tally{Query: q(all),
			By: []string{"stage", "customer_type", "source", "region", "industry", "value_tier"}}},
		"customers by rating, manager": {store.Customers, models.Tally{Query: q(manager), By: []string{"credit.rating"}}},
		"customers by tier, a team":    {store.Customers, models.Tally{Query: q(all, models.Cond{Field: "team_id", Op: models.OpEq, Value: "t1"}), By: []string{"loyalty.tier"}}},
		"new customers per day, rep": {store.Customers, models.Tally{Query: q(rep, period("created_at", 40)...),
			By: []string{"created_at"}, Days: []string{"created_at"}}},
		"owing customers, manager": {store.Customers, models.Tally{
			Query: q(manager, models.Cond{Field: "credit.outstanding", Op: models.OpGt, Value: int64(0)}),
			By:    []string{"_id", "number", "name", "credit.rating", "credit.outstanding"}}},
		"owed in all, per stage": {store.Customers, models.Tally{Query: q(all), By: []string{"stage"}, Sum: []string{"credit.outstanding"}}},
		"active customers, rep": {store.Customers, models.Tally{
			Query: q(rep, models.Cond{Field: "stage", Op: models.OpIn, Value: []string{"customer", "loyal"}}),
			By:    []string{"_id", "number", "name", "last_interaction_at"}}},
		"everyone, counted":  {store.Customers, models.Tally{Query: q(all)}},
		"versions per stage": {store.Customers, models.Tally{Query: q(all), By: []string{"stage"}, Sum: []string{"version"}}},
		"nobody's":           {store.Customers, models.Tally{Query: q(models.Scope{}), By: []string{"stage"}}},
		"interactions per author, day and channel": {store.Interactions, models.Tally{Query: q(manager, period("occurred_at", 30)...),
			By: []string{"created_by", "occurred_at", "channel"}, Days: []string{"occurred_at"}}},
		"visits checked in": {store.Interactions, models.Tally{Query: q(all, append(period("occurred_at", 60),
			models.Cond{Field: "channel", Op: models.OpEq, Value: "visit"}, models.Cond{Field: "check_in.lat", Op: models.OpNe, Value: nil})...),
			By: []string{"created_by"}}},
	}
}

// TestTalliesMatchTheRecords: every tally gives the groups, counts and
// sums computed here from the records a plain query returns.
func TestTalliesMatchTheRecords(t *testing.T) {
	st := env.Store(t)
	f := seedQueryFixture(t, st, 300)
	ctx := context.Background()
	for name, tc := range tallyCases(f) {
		t.Run(name, func(t *testing.T) {
			got, err := st.Tally(ctx, tc.coll, tc.t)
			if err != nil {
				t.Fatal(err)
			}
			var records []bson.M
			if err := st.Find(ctx, tc.coll, tc.t.Query, &records); err != nil {
				t.Fatal(err)
			}
			want := map[string][2]int64{}
			for _, r := range records {
				values := make([]any, len(tc.t.By))
				for i, field := range tc.t.By {
					values[i] = testenv.Field(r, field)
					if tm, ok := values[i].(time.Time); ok && slices.Contains(tc.t.Days, field) {
						values[i] = tm.Truncate(24 * time.Hour)
					}
				}
				var sum int64
				for _, field := range tc.t.Sum {
					sum += asInt(testenv.Field(r, field))
				}
				w := want[groupKey(values)]
				want[groupKey(values)] = [2]int64{w[0] + 1, w[1] + sum}
			}
			have := map[string][2]int64{}
			for _, g := range got {
				var sum int64
				if len(g.Sums) > 0 {
					sum = g.Sums[0]
				}
				if _, dup := have[groupKey(g.Values)]; dup {
					t.Errorf("group %s twice", groupKey(g.Values))
				}
				have[groupKey(g.Values)] = [2]int64{g.Count, sum}
			}
			if fmt.Sprint(have) != fmt.Sprint(want) {
				t.Fatalf("tally:\n got %v\nwant %v", have, want)
			}
			if name != "nobody's" && len(want) == 0 {
				t.Fatal("the fixture selects nothing: the comparison proves nothing")
			}
		})
	}
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return 0
}

// groupKey prints a group's values alike whatever the engine returned
// (a whole number as int64 or float64, a time in any zone).
func groupKey(values []any) string {
	parts := make([]string, len(values))
	for i, v := range values {
		switch x := v.(type) {
		case float64:
			parts[i] = fmt.Sprintf("n%d", int64(x))
		case int64:
			parts[i] = fmt.Sprintf("n%d", x)
		case time.Time:
			parts[i] = "t" + x.UTC().Format(time.RFC3339Nano)
		case nil:
			parts[i] = "nil"
		default:
			parts[i] = fmt.Sprintf("%q", x)
		}
	}
	return strings.Join(parts, "|")
}

// TestRecordsAreKeptInline: on PostgreSQL every record collection keeps its
// documents in the table's pages, not in TOAST (see embedded keepInline).
func TestRecordsAreKeptInline(t *testing.T) {
	st := env.Store(t)
	if !st.ReadsTables() {
		t.Skip("the driver path leaves storage to the server")
	}
	for _, coll := range append(store.SyncedCollections, store.Customers) {
		inline, err := st.KeepsDocumentsInline(context.Background(), coll)
		if err != nil || !inline {
			t.Errorf("%s: inline %v, %v", coll, inline, err)
		}
	}
}
