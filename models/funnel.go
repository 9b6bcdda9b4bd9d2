package models

import "time"

// FunnelStages are the forward stages of the lifecycle, lead to loyal, in
// the order a sale moves through them (Stages without at_risk and churned,
// which can follow any stage). A move "advances" when it reaches a stage
// later in this list.
func FunnelStages() []string { return []string{"lead", "prospect", "opportunity", "customer", "loyal"} }

// Funnel asks storage for the moves of customers' stage histories in a
// period: what the funnel report counts, read from an index of the moves
// rather than from every customer's history. Query selects the customers
// (tenant, live ones, what the actor may see, the filter's team and
// owner); its sort, position and limit do not apply.
type Funnel struct {
	Query
	// From and To bound the period [From, To).
	From, To time.Time
}

// FunnelCount is what Funnel counts for one stage of FunnelStages.
type FunnelCount struct {
	Stage string
	// Entered counts the moves into the stage in the period (a customer's
	// creation is its first move); Advanced those of them followed, at any
	// time up to now, by a move to a later stage of the funnel.
	Entered, Advanced int64
	// Stays counts the stays in the stage that ended in the period (by the
	// next move), StayMillis adds up their lengths.
	Stays, StayMillis int64
}
