package crm_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// What notify reads of the CRM for a digest: a manager's team members (none
// for a manager of no team, not the whole tenant) and what they have on.
func TestDigestReadsCountTheManagersTeamsOnly(t *testing.T) {
	svc, st, clock, rep := crashTenant(t)
	ctx := context.Background()
	now := clock.Now()
	user := func(id string, role models.Role, team string) {
		t.Helper()
		u := models.User{ID: id, TenantID: rep.TenantID, Email: id + "@acme.test", Name: id, Role: role, TeamID: team,
			TimeZone: "UTC", Locale: "en", Active: true, PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	user(rep.UserID, models.RoleRep, rep.TeamID)
	user("rep-2", models.RoleRep, "team-2")
	user("lead", models.RoleManager, "")
	user("idle-lead", models.RoleManager, "")
	for _, team := range []models.Team{{ID: rep.TeamID, Name: "One", ManagerID: "lead"}, {ID: "team-2", Name: "Two", ManagerID: "someone"}} {
		team.TenantID, team.CreatedAt, team.UpdatedAt = rep.TenantID, now, now
		if err := st.CreateTeam(ctx, team); err != nil {
			t.Fatal(err)
		}
	}

	members, err := svc.TeamMembers(ctx, rep.TenantID, "lead")
	if err != nil || len(members) != 1 || members[0].ID != rep.UserID {
		t.Fatalf("lead's team members: %+v, %v", members, err)
	}
	if members, err := svc.TeamMembers(ctx, rep.TenantID, "idle-lead"); err != nil || len(members) != 0 {
		t.Fatalf("a manager of no team has members %+v, %v", members, err)
	}
	managers, err := svc.Managers(ctx, rep.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range managers {
		ids = append(ids, m.ID)
	}
	if slices.Sort(ids); !slices.Equal(ids, []string{"idle-lead", "lead"}) {
		t.Fatalf("managers %v", ids)
	}

	c, err := svc.Customers.Create(ctx, rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Wang Fang"}})
	if err != nil {
		t.Fatal(err)
	}
	// The digest's day here starts an hour ago: due in it means within
	// [now-1h, now+23h), overdue means due before now.
	for _, due := range []time.Duration{2 * time.Hour, -2 * time.Hour, -30 * time.Minute} {
		task := models.Task{ChildFields: models.ChildFields{CustomerID: c.ID}, Title: "Visit", DueAt: now.Add(due)}
		if _, err := svc.Tasks.Create(ctx, rep, task); err != nil {
			t.Fatal(err)
		}
	}
	got, err := svc.DigestCounts(ctx, rep.TenantID, []string{rep.UserID}, now.Add(-time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if want := (models.DigestCounts{DueToday: 2, Overdue: 2, NewCustomers: 1}); got != want {
		t.Fatalf("digest counts %+v, want %+v", got, want)
	}
	if got, err := svc.DigestCounts(ctx, rep.TenantID, []string{"rep-2"}, now.Add(-time.Hour), now); err != nil || got != (models.DigestCounts{}) {
		t.Fatalf("another team's counts %+v, %v", got, err)
	}

	var seen int
	if err := svc.EachTask(ctx, rep.TenantID, func(models.Task) error { seen++; return nil }); err != nil || seen != 3 {
		t.Fatalf("EachTask saw %d tasks, %v", seen, err)
	}
}
