package models

import (
	"math"
	"slices"
	"sort"
	"time"
)

// RFM segmentation of customers by their orders.
//
// Definition (also in the API description of GET /v1/reports/rfm):
//   - Orders count unless cancelled or draft, in the tenant's currency, over
//     the last RFMWindowDays days.
//   - Recency is the days since the customer's last such order; Frequency the
//     number of orders; Monetary their total amount.
//   - Each is scored 1 to 5 among the tenant's customers with orders by the
//     share of them it is at least as good as: ceil(5 × share), so the best
//     fifth scores 5 and equal values score the same (5 is best: most
//     recent, most frequent, largest).
//   - The segment comes from R and FM = the rounded mean of F and M:
//     champions R≥4 FM≥4; loyal R≥3 FM≥3; new R≥4 with one order; potential
//     R≥3; at_risk R≤2 FM≥3; hibernating R=2; lost R=1.
//   - The segment is written to the customer's value_tier; customers without
//     such orders keep no tier.

// RFMWindowDays is how far back orders count.
const RFMWindowDays = 365

// OrderFacts are what RFM needs of one customer's orders.
type OrderFacts struct {
	CustomerID string
	LastOrder  time.Time
	Orders     int
	Amount     int64
}

// RFMScore is one customer's scores and segment.
type RFMScore struct {
	CustomerID  string `json:"customer_id"`
	RecencyDays int    `json:"recency_days"`
	Orders      int    `json:"orders"`
	Amount      int64  `json:"amount"`
	R           int    `json:"r"`
	F           int    `json:"f"`
	M           int    `json:"m"`
	Segment     string `json:"segment"`
}

// ScoreRFM scores every customer of facts as of now.
func ScoreRFM(facts []OrderFacts, now time.Time) []RFMScore {
	n := len(facts)
	out := make([]RFMScore, n)
	recency := make([]float64, n)
	freq := make([]float64, n)
	money := make([]float64, n)
	for i, f := range facts {
		days := int(now.Sub(f.LastOrder).Hours() / 24)
		out[i] = RFMScore{CustomerID: f.CustomerID, RecencyDays: days, Orders: f.Orders, Amount: f.Amount}
		recency[i] = -float64(days) // fewer days is better
		freq[i] = float64(f.Orders)
		money[i] = float64(f.Amount)
	}
	r, fr, m := quintiles(recency), quintiles(freq), quintiles(money)
	for i := range out {
		out[i].R, out[i].F, out[i].M = r[i], fr[i], m[i]
		out[i].Segment = segment(out[i].R, int(math.Round(float64(out[i].F+out[i].M)/2)), out[i].Orders)
	}
	return out
}

// quintiles scores values 1 to 5: ceil(5 × the share of values at most
// this one), so the top fifth scores 5 and equal values score the same.
func quintiles(values []float64) []int {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	n := len(values)
	scores := make([]int, n)
	for i, v := range values {
		atMost := sort.Search(n, func(j int) bool { return sorted[j] > v })
		scores[i] = (5*atMost + n - 1) / n
	}
	return scores
}

func segment(r, fm, orders int) string {
	switch {
	case r >= 4 && fm >= 4:
		return "champions"
	case r >= 3 && fm >= 3:
		return "loyal"
	case r >= 4 && orders == 1:
		return "new"
	case r >= 3:
		return "potential"
	case fm >= 3:
		return "at_risk"
	case r == 2:
		return "hibernating"
	default:
		return "lost"
	}
}

// RFMSegments lists the segments in the order reports show them.
var RFMSegments = []string{"champions", "loyal", "potential", "new", "at_risk", "hibernating", "lost"}

// CountsRFM counts scores per segment, every segment present.
func CountsRFM(scores []RFMScore) map[string]int {
	out := map[string]int{}
	for _, s := range RFMSegments {
		out[s] = 0
	}
	for _, s := range scores {
		out[s.Segment]++
	}
	return out
}
