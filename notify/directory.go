package notify

import (
	"context"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// directory is notify's one door to the people reminders go to and the work
// they are about: who a user is and which team they are in, whom a manager
// manages, and the tenants' tasks and tickets. Package crm's Service serves
// it; notify reads none of these from storage itself.
type directory interface {
	// TenantIDs lists every tenant (Reconcile goes through them all).
	TenantIDs(ctx context.Context) ([]string, error)
	// User returns a user of tenant, or models.ErrNotFound.
	User(ctx context.Context, tenant, id string) (models.User, error)
	// Team returns a team of tenant, or models.ErrNotFound.
	Team(ctx context.Context, tenant, id string) (models.Team, error)
	// Managers lists the tenant's managers, who each get a digest.
	Managers(ctx context.Context, tenant string) ([]models.User, error)
	// TeamMembers lists the users of the teams managerID manages.
	TeamMembers(ctx context.Context, tenant, managerID string) ([]models.User, error)
	// Task and Ticket return a live task or ticket, or models.ErrNotFound.
	Task(ctx context.Context, tenant, id string) (models.Task, error)
	Ticket(ctx context.Context, tenant, id string) (models.Ticket, error)
	// EachTask and EachTicket call f on every task or ticket of tenant,
	// deleted ones included.
	EachTask(ctx context.Context, tenant string, f func(models.Task) error) error
	EachTicket(ctx context.Context, tenant string, f func(models.Ticket) error) error
	// DigestCounts counts what the users have on, for a digest: open tasks
	// due in the day starting at dayStart and overdue at now, customers got
	// in the last day, open tickets past their SLA.
	DigestCounts(ctx context.Context, tenant string, userIDs []string, dayStart, now time.Time) (models.DigestCounts, error)
}
