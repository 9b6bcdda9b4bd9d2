package crm

import (
	"context"

	"github.com/fieldcrm/fieldcrm/models"
)

// LoyaltyReport is points and members.
type LoyaltyReport struct {
	Definition string         `json:"definition"`
	Earned     int64          `json:"earned"`
	Redeemed   int64          `json:"redeemed"`
	Expired    int64          `json:"expired"`
	Adjusted   int64          `json:"adjusted"`
	ByTier     map[string]int `json:"members_by_tier"`
}

// LoyaltyDefinition states the loyalty report.
const LoyaltyDefinition = "Points of ledger entries made in [from, to), by kind (adjusted is the signed sum of adjustments); members_by_tier: customers by their current loyalty tier."

// LoyaltyReport reports points and members per tier.
func (s *Service) LoyaltyReport(ctx context.Context, a models.Actor, f ReportFilter) (LoyaltyReport, error) {
	f, err := s.window(f)
	if err != nil {
		return LoyaltyReport{}, err
	}
	out := LoyaltyReport{Definition: LoyaltyDefinition, ByTier: map[string]int{}}
	err = eachVisible(ctx, s.LoyaltyEntries, a, f, func(e *models.LoyaltyEntry) {
		if !f.within(e.CreatedAt) {
			return
		}
		switch e.Kind {
		case models.PointsEarn:
			out.Earned += e.Points
		case models.PointsRedeem:
			out.Redeemed += e.Points
		case models.PointsExpire:
			out.Expired += e.Points
		default:
			out.Adjusted += e.Points
		}
	})
	if err != nil {
		return out, err
	}
	err = eachVisible(ctx, s.Customers, a, f, func(c *models.Customer) {
		tier := c.Loyalty.Tier
		if tier == "" {
			tier = none
		}
		out.ByTier[tier]++
	})
	return out, err
}
