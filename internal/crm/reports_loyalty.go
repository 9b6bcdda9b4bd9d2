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
	entries, err := s.tally(ctx, s.LoyaltyEntries.coll, models.Tally{Query: reportQuery(a, f, f.inPeriod("created_at")...),
		By: []string{"kind"}, Sum: []string{"points"}})
	if err != nil {
		return out, err
	}
	for _, g := range entries {
		switch points := g.Sums[0]; text(g.Values[0]) {
		case models.PointsEarn:
			out.Earned += points
		case models.PointsRedeem:
			out.Redeemed += points
		case models.PointsExpire:
			out.Expired += points
		default:
			out.Adjusted += points
		}
	}
	members, err := s.tally(ctx, s.Customers.coll, models.Tally{Query: reportQuery(a, f), By: []string{"loyalty.tier"}})
	for _, g := range members {
		tier := text(g.Values[0])
		if tier == "" {
			tier = none
		}
		out.ByTier[tier] += int(g.Count)
	}
	return out, err
}
