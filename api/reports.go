package api

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// reportParams are the query parameters every report takes (reportFilter).
var reportParams = []param{
	{name: "from", doc: "start of the period: a date (2026-11-01) or a time (2026-11-01T08:00:00Z); default: the report's usual period"},
	{name: "to", doc: "end of the period (excluded): a date or a time; default: now"},
	{name: "team_id", doc: "only this team's records"},
	{name: "owner_id", doc: "only this user's records"},
}

// reportFilter reads ?from=&to=&team_id=&owner_id= (dates as YYYY-MM-DD or
// RFC 3339); the CRM fills in a missing period from its own clock.
func reportFilter(c *fiber.Ctx) (crm.ReportFilter, error) {
	v := &models.ValidationError{}
	f := crm.ReportFilter{TeamID: query(c, "team_id"), OwnerID: query(c, "owner_id")}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		raw := query(c, name)
		if raw == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, raw)
		if err != nil {
			t, err = time.Parse(time.RFC3339, raw)
		}
		if err != nil {
			v.Add(name, "must be a date (2026-11-01) or a time (2026-11-01T08:00:00Z)")
			continue
		}
		*dst = t.UTC()
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
		f, err := reportFilter(c)
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
	f, err := reportFilter(c)
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
