package api

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/crm"
)

// defaultReportSpan is how far back "new" series go when from is not given.
const defaultReportSpan = 90 * 24 * time.Hour

// reportFilter reads ?from=&to=&team_id=&owner_id= (dates as YYYY-MM-DD or
// RFC 3339) and refuses any other parameter.
func reportFilter(c *fiber.Ctx, now time.Time) (crm.ReportFilter, error) {
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
		switch k {
		case "from", "to", "team_id", "owner_id":
		default:
			v.Add(k, "is not a parameter of reports; use from, to, team_id, owner_id")
		}
	}
	return f, v.Err()
}

func (s *Server) customerReport(c *fiber.Ctx) error {
	f, err := reportFilter(c, time.Now().UTC())
	if err != nil {
		return err
	}
	out, err := s.crm.CustomerReport(c.UserContext(), actorOf(c), f)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *Server) rfmReport(c *fiber.Ctx) error {
	f, err := reportFilter(c, time.Now().UTC())
	if err != nil {
		return err
	}
	out, err := s.crm.RFMReport(c.UserContext(), actorOf(c), f)
	if err != nil {
		return err
	}
	return c.JSON(out)
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
