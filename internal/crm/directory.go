package crm

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// This file is what the server's own work (reminders and push, in package
// notify) reads of the CRM: people, their teams, and the tasks and tickets
// they have on. None of it is scoped to an actor: the callers act as the
// server.

// TenantIDs lists every tenant.
func (s *Service) TenantIDs(ctx context.Context) ([]string, error) {
	return s.store.TenantIDs(ctx)
}

// User returns user id of tenant, or models.ErrNotFound.
func (s *Service) User(ctx context.Context, tenant, id string) (models.User, error) {
	return s.store.User(ctx, tenant, id)
}

// Team returns team id of tenant, or models.ErrNotFound.
func (s *Service) Team(ctx context.Context, tenant, id string) (models.Team, error) {
	return s.store.Team(ctx, tenant, id)
}

// Managers lists the tenant's users whose role is manager, active or not.
func (s *Service) Managers(ctx context.Context, tenant string) ([]models.User, error) {
	return s.store.Users(ctx, tenant, models.UserFilter{Role: models.RoleManager})
}

// TeamMembers lists the users of the teams that user managerID manages;
// none when they manage no team.
func (s *Service) TeamMembers(ctx context.Context, tenant, managerID string) ([]models.User, error) {
	teams, err := s.store.Teams(ctx, tenant, managerID)
	if err != nil || len(teams) == 0 {
		return nil, err
	}
	ids := make([]string, len(teams))
	for i, t := range teams {
		ids[i] = t.ID
	}
	return s.store.Users(ctx, tenant, models.UserFilter{TeamIDs: ids})
}

// EachTask calls f on every task of tenant, deleted ones included, in the
// order they last changed.
func (s *Service) EachTask(ctx context.Context, tenant string, f func(models.Task) error) error {
	return s.Tasks.everyRecord(ctx, tenant, f)
}

// EachTicket calls f on every ticket of tenant, deleted ones included, in
// the order they last changed.
func (s *Service) EachTicket(ctx context.Context, tenant string, f func(models.Ticket) error) error {
	return s.Tickets.everyRecord(ctx, tenant, f)
}

// everyRecord calls f on every record of tenant, in pages by sync number,
// so that memory stays bounded whatever the collection's size.
func (r *Records[R]) everyRecord(ctx context.Context, tenant string, f func(R) error) error {
	const page = 1000
	for after := int64(0); ; {
		var batch []R
		if err := r.svc.store.Changes(ctx, r.coll, tenant, after, 1<<62, page, &batch); err != nil {
			return fmt.Errorf("read %s of tenant %s: %w", r.coll, tenant, err)
		}
		for i := range batch {
			if r.h.loaded != nil {
				r.h.loaded(&batch[i])
			}
			after = meta(&batch[i]).Seq
			if err := f(batch[i]); err != nil {
				return err
			}
		}
		if len(batch) < page {
			return nil
		}
	}
}

// DigestCounts counts what the users named have on, for a manager's daily
// digest: their open tasks due in the day that starts at dayStart and
// overdue at now, the customers they got in the 24 hours before now, and
// their open tickets past their SLA at now.
func (s *Service) DigestCounts(ctx context.Context, tenant string, userIDs []string, dayStart, now time.Time) (models.DigestCounts, error) {
	var c models.DigestCounts
	if len(userIDs) == 0 {
		return c, nil
	}
	count := func(coll string, conds ...models.Cond) (int, error) {
		var found []struct {
			ID string `bson:"_id"`
		}
		q := models.Query{Tenant: tenant, Scope: models.Scope{All: true}, Conds: conds}
		if err := s.store.Find(ctx, coll, q, &found); err != nil {
			return 0, fmt.Errorf("digest counts of tenant %s: %w", tenant, err)
		}
		return len(found), nil
	}
	open := models.Cond{Field: "status", Op: models.OpEq, Value: models.TaskOpen}
	theirs := models.Cond{Field: "assignee_id", Op: models.OpIn, Value: userIDs}
	var err error
	if c.DueToday, err = count(store.Tasks, open, theirs, models.Cond{Field: "due_at", Op: models.OpGte, Value: dayStart},
		models.Cond{Field: "due_at", Op: models.OpLt, Value: dayStart.AddDate(0, 0, 1)}); err != nil {
		return c, err
	}
	if c.Overdue, err = count(store.Tasks, open, theirs, models.Cond{Field: "due_at", Op: models.OpLt, Value: now}); err != nil {
		return c, err
	}
	if c.NewCustomers, err = count(store.Customers, models.Cond{Field: "owner_id", Op: models.OpIn, Value: userIDs},
		models.Cond{Field: "created_at", Op: models.OpGte, Value: now.Add(-24 * time.Hour)}); err != nil {
		return c, err
	}
	c.TicketsPastSLA, err = count(store.Tickets, theirs, models.Cond{Field: "status", Op: models.OpIn,
		Value: []string{models.TicketNew, models.TicketAssigned, models.TicketInProgress}}, models.Cond{Field: "sla_due_at", Op: models.OpLt, Value: now})
	return c, err
}
