package crm_test

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
)

// funnelByHand is the funnel report computed from the customers' records
// as FunnelDefinition states it: every live customer a sees, each move of
// its history into a funnel stage in [from, to), whether a later move went
// further along the funnel, and the stays that ended in [from, to).
func funnelByHand(t *testing.T, st *store.Store, a models.Actor, f crm.ReportFilter) []crm.FunnelStep {
	t.Helper()
	var customers []models.Customer
	if err := st.Find(context.Background(), store.Customers, models.Query{Tenant: a.TenantID, Scope: models.Scope{All: true}}, &customers); err != nil {
		t.Fatal(err)
	}
	stages := models.FunnelStages()
	pos := func(stage string) int { return slices.Index(stages, stage) + 1 }
	within := func(at time.Time) bool { return !at.Before(f.From) && at.Before(f.To) }
	entered, advanced, stays := map[string]int{}, map[string]int{}, map[string]int{}
	days := map[string]float64{}
	for _, c := range customers {
		visible := a.Role == models.RoleAdmin || c.OwnerID == a.UserID || (a.Role == models.RoleManager && slices.Contains(a.ManagedTeamIDs, c.TeamID))
		if !visible || (f.TeamID != "" && c.TeamID != f.TeamID) || (f.OwnerID != "" && c.OwnerID != f.OwnerID) {
			continue
		}
		h := c.StageHistory
		for i, move := range h {
			if i+1 < len(h) && within(h[i+1].At) {
				stays[move.To]++
				days[move.To] += h[i+1].At.Sub(move.At).Hours() / 24
			}
			if pos(move.To) == 0 || !within(move.At) {
				continue
			}
			entered[move.To]++
			if slices.ContainsFunc(h[i+1:], func(later models.Transition) bool { return pos(later.To) > pos(move.To) }) {
				advanced[move.To]++
			}
		}
	}
	out := make([]crm.FunnelStep, len(stages))
	for i, s := range stages {
		out[i] = crm.FunnelStep{Stage: s, Entered: entered[s], Advanced: advanced[s]}
		if entered[s] > 0 {
			out[i].Conversion = math.Round(float64(advanced[s])/float64(entered[s])*100) / 100
		}
		if stays[s] > 0 {
			out[i].AvgDaysInStage = math.Round(days[s]/float64(stays[s])*100) / 100
		}
	}
	return out
}

// TestFunnelMatchesTheStageHistories: the funnel report, read from the
// index of stage moves, equals the report computed from the customers'
// histories, for an admin, a manager, reps and the filters of a team and
// an owner, over periods that cut stays in the middle, after each kind of
// write that changes what it counts: creates, stage changes through the API
// and through a device's push (forward, backward, repeated), a change of
// owner, a soft delete and a merge.
func TestFunnelMatchesTheStageHistories(t *testing.T) {
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := testenv.NewClock(start)
	svc, p, st := newTenantWithStore(t, app.WithClock(clk.Now))
	storeUsers(t, st, p)
	ctx := context.Background()
	day := func(n float64) time.Time { return start.Add(time.Duration(n * float64(24*time.Hour))) }
	at := func(n float64) { clk.Set(day(n)) }
	create := func(a models.Actor, name, stage string) string {
		c := company(name)
		c.Stage = stage
		return mustCreate(t, svc, a, c).ID
	}
	move := func(a models.Actor, id, stage string) {
		t.Helper()
		_, err := svc.Customers.Update(ctx, a, id, 0, func(dst any) error { dst.(*models.Customer).Stage = stage; return nil })
		must(t, err)
	}
	check := func(when string) {
		t.Helper()
		filters := []crm.ReportFilter{
			{From: day(0), To: day(200)}, {From: day(4), To: day(22)}, {From: day(11.5), To: day(45)},
			{From: day(-10), To: day(1)}, {From: day(21), To: day(33)}, {From: day(5), To: day(5).Add(time.Millisecond)},
			{From: day(0), To: day(200), TeamID: "team-1"}, {From: day(0), To: day(200), OwnerID: p.rep2.UserID},
		}
		for _, a := range []models.Actor{p.admin, p.manager, p.rep, p.rep2, p.otherManager} {
			for _, f := range filters {
				got, err := svc.FunnelReport(ctx, a, f)
				must(t, err)
				if want := funnelByHand(t, st, a, f); !slices.Equal(got, want) {
					t.Errorf("%s, %s sees [day %.1f, day %.1f) team %q owner %q:\n got %+v\nwant %+v", when, a.UserID,
						f.From.Sub(start).Hours()/24, f.To.Sub(start).Hours()/24, f.TeamID, f.OwnerID, got, want)
				}
			}
		}
	}

	at(0)
	forward := create(p.rep, "Forward", "lead")
	backward := create(p.rep2, "Backward", "lead")
	at(0.5)
	other := create(p.otherManager, "Other team", "opportunity")
	at(1)
	deleted := create(p.rep, "Deleted", "lead")
	survivor := create(p.rep, "Survivor", "prospect")
	absorbed := create(p.rep2, "Absorbed", "opportunity")
	plain := create(p.rep2, "No history beyond creation", "")
	check("after creates")

	at(5)
	move(p.rep, forward, "prospect")
	move(p.rep, deleted, "prospect")
	at(10.25)
	move(p.rep2, backward, "prospect")
	at(12)
	move(p.rep2, backward, "lead") // backwards
	at(15)
	move(p.otherManager, other, "lead")
	at(20)
	move(p.rep, forward, "opportunity")
	move(p.rep, survivor, "churned")
	at(22)
	move(p.rep, survivor, "prospect")
	check("after stage changes")

	// A device pushes a new customer, then moves it on and back.
	at(25)
	pushed := models.NewID()
	push := func(created bool, columns map[string]any) {
		t.Helper()
		raw := map[string]json.RawMessage{}
		var changed []string
		for k, v := range columns {
			b, _ := json.Marshal(v)
			raw[k] = b
			changed = append(changed, k)
		}
		_, err := svc.Customers.ApplyDeviceEdit(ctx, p.rep, crm.DeviceEdit{ID: pushed, Created: created, Columns: raw, Changed: changed})
		must(t, err)
	}
	push(true, map[string]any{"name": "Pushed", "kind": models.KindCompany, "stage": "lead"})
	at(27)
	push(false, map[string]any{"stage": "opportunity"})
	at(28)
	push(false, map[string]any{"stage": "prospect"})
	at(30)
	move(p.rep2, backward, "prospect")
	move(p.rep2, backward, "prospect") // no move: the same stage
	check("after pushes")

	at(32)
	_, err := svc.Assign(ctx, p.manager, forward, p.rep2.UserID)
	must(t, err)
	must(t, svc.Customers.Delete(ctx, p.rep, deleted, 0))
	at(40)
	move(p.rep, survivor, "customer")
	_, err = svc.Merge(ctx, p.admin, survivor, []string{absorbed})
	must(t, err)
	at(50)
	move(p.rep2, backward, "churned")
	move(p.otherManager, other, "loyal")
	move(p.rep2, plain, "customer")
	check("after an assignment, a delete and a merge")
}
