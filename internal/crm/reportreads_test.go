package crm_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/redis/counter"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/cursor"
)

// readRecorder is the store, noting the tallies and whole-record reads a
// report makes.
type readRecorder struct {
	*store.Store
	mu      sync.Mutex
	tallies []recordedTally
	reads   []recordedQuery
	funnels []models.Funnel
}

type recordedTally struct {
	coll string
	t    models.Tally
}

type recordedQuery struct {
	coll string
	q    models.Query
}

func (r *readRecorder) Tally(ctx context.Context, coll string, t models.Tally) ([]models.TallyGroup, error) {
	r.mu.Lock()
	r.tallies = append(r.tallies, recordedTally{coll, t})
	r.mu.Unlock()
	return r.Store.Tally(ctx, coll, t)
}

func (r *readRecorder) Funnel(ctx context.Context, f models.Funnel) ([]models.FunnelCount, error) {
	r.mu.Lock()
	r.funnels = append(r.funnels, f)
	r.mu.Unlock()
	return r.Store.Funnel(ctx, f)
}

func (r *readRecorder) Each(ctx context.Context, coll string, q models.Query, each func(decode func(out any) error) error) error {
	r.mu.Lock()
	r.reads = append(r.reads, recordedQuery{coll, q})
	r.mu.Unlock()
	return r.Store.Each(ctx, coll, q, each)
}

// TestEveryReportReadsAnIndex runs every report as an admin, a manager and
// a rep, with records of every kind they count, and checks each read they
// make: a tally has a tally index holding every field it uses, and on
// SQLite reads nothing but that index's entries (on PostgreSQL, the side
// table of tallies through a copy of a tally index, never a whole table
// nor a document); a read of whole records is of one period, in the order of
// that period's index; the funnel reads the two indexes of the side table of
// stage moves, and nothing else.
func TestEveryReportReadsAnIndex(t *testing.T) {
	st := env.Store(t)
	rd := env.Redis(t)
	ctx := context.Background()
	rec := &readRecorder{Store: st}
	sealer, _ := crm.NewSealer(bytes.Repeat([]byte{7}, 32))
	svc, err := crm.New(crm.Options{Store: rec, Counters: counter.New(rd.Client, rd.Prefix), Sealer: sealer,
		Sequencer: cursor.New(rd.Client, rd.Prefix+"sync:", 0, nil, st), Logger: testenv.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	tenant := models.Tenant{ID: models.NewID(), Name: "Reports", CreatedAt: time.Now().UTC()}
	if err := st.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	admin := models.Actor{UserID: "admin", TenantID: tenant.ID, Role: models.RoleAdmin}
	manager := models.Actor{UserID: "mgr", TenantID: tenant.ID, Role: models.RoleManager, TeamID: "team", ManagedTeamIDs: []string{"team"}}
	rep := models.Actor{UserID: "rep", TenantID: tenant.ID, Role: models.RoleRep, TeamID: "team"}
	c, err := svc.CreateCustomer(ctx, rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Counted", Kind: models.KindCompany, Stage: "customer"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	child := models.ChildFields{CustomerID: c.ID}
	if _, err := svc.Orders.Create(ctx, rep, models.Order{ChildFields: child, Items: []models.LineItem{{Product: "Pump", Quantity: 1, UnitPrice: 5000}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.LoyaltyEntries.Create(ctx, rep, models.LoyaltyEntry{ChildFields: child, Kind: models.PointsEarn, Points: 10, Reason: "order"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Interactions.Create(ctx, rep, models.Interaction{ChildFields: child, Channel: "visit", OccurredAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := st.CreateUser(ctx, models.User{ID: rep.UserID, TenantID: tenant.ID, Email: "rep@reports.test", Name: "Rep", Role: models.RoleRep, TeamID: rep.TeamID,
		TimeZone: "UTC", Locale: "en", Active: true, PasswordHash: "x", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Tasks.Create(ctx, rep, models.Task{ChildFields: child, Title: "Call back", DueAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RefreshRFM(ctx, tenant.ID); err != nil {
		t.Fatal(err)
	}
	for _, a := range []models.Actor{admin, manager, rep} {
		f := crm.ReportFilter{}
		if _, err := svc.CustomerReport(ctx, a, f); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.FunnelReport(ctx, a, f); err != nil {
			t.Fatal(err)
		}
		if r, err := svc.SalesReport(ctx, a, f, 30); err != nil || r.Revenue != 5000 || len(r.TopCustomers) != 1 {
			t.Fatalf("sales report as %s: %+v, %v", a.Role, r, err)
		}
		if _, err := svc.ActivityReport(ctx, a, f); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ServiceReport(ctx, a, f); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.LoyaltyReport(ctx, a, f); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RFMReport(ctx, a, f); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.tallies) < 40 || len(rec.reads) < 6 {
		t.Fatalf("%d tallies and %d reads recorded: the reports did not run as expected", len(rec.tallies), len(rec.reads))
	}
	for _, r := range rec.tallies {
		index := store.TallyIndex(r.coll, r.t)
		if index == "" {
			t.Errorf("no tally index of %s holds every field of %+v", r.coll, r.t)
			continue
		}
		plan, err := st.ExplainTally(ctx, r.coll, r.t)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case plan == "": // MongoDB plans for itself; migration 13 gives it the index
		case strings.Contains(plan, "Seq Scan"):
			t.Errorf("tally of %s by %v reads the whole table:\n%s", r.coll, r.t.By, plan)
		case strings.Contains(plan, "Index"):
			// PostgreSQL: the side table of tallies, through a copy of a
			// tally index (the planner picks one; on a test's few rows, the
			// smallest) or, for named records, its key; never a document.
			one := slices.ContainsFunc(r.t.Conds, func(c models.Cond) bool { return c.Field == "_id" })
			if !strings.Contains(plan, "_fieldcrm_tally_") || !one && strings.Contains(plan, "_pkey") || strings.Contains(plan, "jsonb") {
				t.Errorf("tally of %s by %v does not read the side table of tallies through a tally index:\n%s", r.coll, r.t.By, plan)
			}
		case strings.Contains(plan, "SEARCH") || strings.Contains(plan, "SCAN"): // SQLite
			if !strings.Contains(plan, "USING COVERING INDEX") || !strings.Contains(plan, "_fieldcrm_q_"+index+" ") {
				t.Errorf("tally of %s by %v does not read only %s:\n%s", r.coll, r.t.By, index, plan)
			}
		}
	}
	if len(rec.funnels) != 3 {
		t.Fatalf("%d funnels recorded, want one per actor", len(rec.funnels))
	}
	for _, f := range rec.funnels {
		plan, err := st.ExplainFunnel(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		checkFunnelPlan(t, plan)
	}
	indexes := store.QueryIndexes()
	for _, r := range rec.reads {
		isPeriod := func(c models.Cond) bool {
			return c.Field == r.q.SortField && (c.Op == models.OpGte || c.Op == models.OpLt)
		}
		hasIndex := slices.ContainsFunc(indexes[r.coll], func(ix store.Index) bool { return len(ix.Fields) > 1 && ix.Fields[1] == r.q.SortField })
		if r.q.SortField == "" || !slices.ContainsFunc(r.q.Conds, isPeriod) || !hasIndex {
			t.Errorf("a report reads %s records by %+v: not one period in its index's order", r.coll, r.q)
		}
	}
}

// checkFunnelPlan fails t unless plan (of store.ExplainFunnel) reads the
// side table of moves from its two indexes, entries alone on SQLite, and
// never a table whole on PostgreSQL.
func checkFunnelPlan(t *testing.T, plan string) {
	t.Helper()
	switch {
	case plan == "": // MongoDB plans for itself; migration 17 gives it the index
	case strings.Contains(plan, "Seq Scan"):
		t.Errorf("the funnel reads a whole table:\n%s", plan)
	case strings.Contains(plan, "Index"): // PostgreSQL
		if !strings.Contains(plan, "_fieldcrm_moves_at") || !strings.Contains(plan, "_fieldcrm_moves_ended") {
			t.Errorf("the funnel does not read the indexes of moves:\n%s", plan)
		}
	default: // SQLite
		var reads []string
		for _, line := range strings.Split(plan, "\n") {
			if strings.Contains(line, "SCAN") || strings.Contains(line, "SEARCH") {
				reads = append(reads, line)
			}
		}
		for _, index := range []string{"_fieldcrm_moves_at", "_fieldcrm_moves_ended"} {
			if !slices.ContainsFunc(reads, func(line string) bool {
				return strings.Contains(line, "SEARCH") && strings.Contains(line, "USING COVERING INDEX") && strings.Contains(line, index+" ")
			}) {
				t.Errorf("the funnel does not read the entries of %s alone:\n%s", index, plan)
			}
		}
		if len(reads) != 2 {
			t.Errorf("the funnel reads more than the two indexes of moves:\n%s", plan)
		}
	}
}
