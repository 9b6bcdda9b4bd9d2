package models

import (
	"slices"
	"testing"
	"time"
)

// Five customers, scored by hand (score = ceil(5 × share of customers at most
// as good); FM = round((F+M)/2), halves up):
//
//	customer  days since  orders  amount   R F M  FM  segment
//	a         1           5       50000    5 5 4  5   champions
//	b         10          4       20000    4 4 3  4   champions
//	c         30          1       90000    3 2 5  4   loyal (R 3)
//	d         200         1       1000     1 2 1  2   lost
//	e         100         3       5000     2 3 2  3   at_risk (R 2, FM 3)
func TestScoreRFMByHand(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	facts := []OrderFacts{
		{CustomerID: "a", LastOrder: now.Add(-1 * day), Orders: 5, Amount: 50000},
		{CustomerID: "b", LastOrder: now.Add(-10 * day), Orders: 4, Amount: 20000},
		{CustomerID: "c", LastOrder: now.Add(-30 * day), Orders: 1, Amount: 90000},
		{CustomerID: "d", LastOrder: now.Add(-200 * day), Orders: 1, Amount: 1000},
		{CustomerID: "e", LastOrder: now.Add(-100 * day), Orders: 3, Amount: 5000},
	}
	want := map[string][4]any{
		"a": {5, 5, 4, "champions"}, "b": {4, 4, 3, "champions"}, "c": {3, 2, 5, "loyal"},
		"d": {1, 2, 1, "lost"}, "e": {2, 3, 2, "at_risk"},
	}
	for _, s := range ScoreRFM(facts, now) {
		w := want[s.CustomerID]
		if s.R != w[0] || s.F != w[1] || s.M != w[2] || s.Segment != w[3] {
			t.Errorf("%s: R%d F%d M%d %s, want %v", s.CustomerID, s.R, s.F, s.M, s.Segment, w)
		}
	}
}

func TestRFMSegmentsAreValueTiers(t *testing.T) {
	for _, s := range RFMSegments {
		if !slices.Contains(ValueTiers, s) {
			t.Errorf("segment %s is not a value tier", s)
		}
	}
	if got := ScoreRFM([]OrderFacts{{CustomerID: "only", LastOrder: time.Now(), Orders: 1, Amount: 1}}, time.Now()); got[0].Segment != "champions" {
		t.Errorf("a tenant's only buyer: %+v", got[0])
	}
}
