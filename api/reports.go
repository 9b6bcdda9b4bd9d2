package api

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/crm"
)

// defaultReportSpan is how far back "new" series go when from is not given.
const defaultReportSpan = 90 * 24 * time.Hour

// reportFilter reads ?from=&to=&team_id=&owner_id= (dates as YYYY-MM-DD or
// RFC 3339) and refuses any other parameter.
func reportFilter(c *fiber.Ctx, now time.Time, extra ...string) (crm.ReportFilter, error) {
	v := &models.ValidationError{}
	f := crm.ReportFilter{To: now, TeamID: c.Query("team_id"), OwnerID: c.Query("owner_id")}
	parse := func(name string) (time.Time, bool) {
		raw := c.Query(name)
		if raw == "" {
			return time.Time{}, false
		}
		for _, layout := range []string{time.DateOnly, time.RFC3339} {
			if t, err := time.Parse(layout, raw); err == nil {
				return t.UTC(), true
			}
		}
		v.Add(name, "must be a date (2026-11-01) or a time (2026-11-01T08:00:00Z)")
		return time.Time{}, false
	}
	if t, ok := parse("to"); ok {
		f.To = t
	}
	f.From = f.To.Add(-defaultReportSpan)
	if t, ok := parse("from"); ok {
		f.From = t
	}
	if !f.From.Before(f.To) && len(v.Fields) == 0 {
		v.Add("from", "must be before to")
	}
	for k := range c.Queries() {
		if !slices.Contains(append([]string{"from", "to", "team_id", "owner_id"}, extra...), k) {
			v.Add(k, "is not a parameter of this report; use from, to, team_id, owner_id %s", strings.Join(extra, ", "))
		}
	}
	return f, v.Err()
}

type rfmRefreshResponse struct {
	Changed int `json:"changed"`
}

func (s *Server) refreshRFM(c *fiber.Ctx) error {
	a := actorOf(c)
	if a.Role != models.RoleAdmin {
		return &models.ForbiddenError{Reason: "admins refresh the RFM tiers (they also refresh daily)"}
	}
	n, err := s.crm.RefreshRFM(c.UserContext(), a.TenantID)
	if err != nil {
		return err
	}
	return c.JSON(rfmRefreshResponse{Changed: n})
}

// report serves a report that takes only the common parameters.
func report[Out any](get func(ctx context.Context, a models.Actor, f crm.ReportFilter) (Out, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		f, err := reportFilter(c, time.Now().UTC())
		if err != nil {
			return err
		}
		out, err := get(c.UserContext(), actorOf(c), f)
		if err != nil {
			return err
		}
		return c.JSON(out)
	}
}

func (s *Server) salesReport(c *fiber.Ctx) error {
	f, err := reportFilter(c, time.Now().UTC(), "idle_days")
	if err != nil {
		return err
	}
	idle, err := queryInt(c, "idle_days", 30, 1, 3650)
	if err != nil {
		return err
	}
	out, err := s.crm.SalesReport(c.UserContext(), actorOf(c), f, idle)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

type activityResponse struct {
	Definition string             `json:"definition"`
	Reps       []*crm.RepActivity `json:"reps"`
}

func (s *Server) activityReport(ctx context.Context, a models.Actor, f crm.ReportFilter) (activityResponse, error) {
	reps, err := s.crm.ActivityReport(ctx, a, f)
	out := activityResponse{Definition: crm.ActivityDefinition, Reps: []*crm.RepActivity{}}
	for _, r := range reps {
		out.Reps = append(out.Reps, r)
	}
	slices.SortFunc(out.Reps, func(x, y *crm.RepActivity) int { return cmp.Compare(x.UserID, y.UserID) })
	return out, err
}

type funnelResponse struct {
	Definition string           `json:"definition"`
	Steps      []crm.FunnelStep `json:"steps"`
}

func (s *Server) funnelReport(ctx context.Context, a models.Actor, f crm.ReportFilter) (funnelResponse, error) {
	steps, err := s.crm.FunnelReport(ctx, a, f)
	return funnelResponse{Definition: crm.FunnelDefinition, Steps: steps}, err
}
