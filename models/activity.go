package models

import (
	"math"
	"strings"
	"time"
)

// ChildFields is what every record hanging off a customer carries.
type ChildFields struct {
	CustomerID string `bson:"customer_id" json:"customer_id"`
}

// Parent returns the customer the record belongs to.
func (c *ChildFields) Parent() string { return c.CustomerID }

// SetParent moves the record to another customer (merges).
func (c *ChildFields) SetParent(id string) { c.CustomerID = id }

func (c *ChildFields) prepare(v *ValidationError) {
	c.CustomerID = strings.TrimSpace(c.CustomerID)
	if c.CustomerID == "" {
		v.Add("customer_id", "is required")
	}
}

// Contact is a person at a company customer.
type Contact struct {
	Meta          `bson:",inline"`
	ChildFields   `bson:",inline"`
	Name          string `bson:"name" json:"name"`
	Title         string `bson:"title" json:"title"`
	ContactPoints `bson:",inline"`
	IsPrimary     bool `bson:"is_primary" json:"is_primary"`
}

// Prepare normalizes and validates a contact.
func (c *Contact) Prepare(st Settings) error {
	v := &ValidationError{}
	c.ChildFields.prepare(v)
	c.Name = NormalizeText(c.Name)
	checkName(v, "name", c.Name)
	c.Title = shortText(v, "title", c.Title)
	c.ContactPoints.prepare(v, "", st.PhoneRegion)
	return v.Err()
}

// Interaction channels.
var Channels = []string{"phone", "email", "meeting", "visit", "wechat", "sms", "social", "other"}

// CheckIn is where a rep was when they logged a field visit.
type CheckIn struct {
	Lat      float64 `bson:"lat" json:"lat"`
	Lng      float64 `bson:"lng" json:"lng"`
	Accuracy float64 `bson:"accuracy" json:"accuracy"` // metres
	Address  string  `bson:"address" json:"address"`
}

// NextStep is a follow-up planned while logging an interaction; the server turns
// it into a task assigned to the rep.
type NextStep struct {
	Title string    `bson:"title" json:"title"`
	DueAt time.Time `bson:"due_at" json:"due_at"`
	Notes string    `bson:"notes" json:"notes"`
	// TaskID is the task created from it, set by the server.
	TaskID string `bson:"task_id" json:"task_id"`
}

// Interaction is one communication with a customer: a call, a visit, a message.
type Interaction struct {
	Meta            `bson:",inline"`
	ChildFields     `bson:",inline"`
	Channel         string    `bson:"channel" json:"channel"`
	OccurredAt      time.Time `bson:"occurred_at" json:"occurred_at"`
	DurationSeconds int       `bson:"duration_seconds" json:"duration_seconds"`
	Content         string    `bson:"content" json:"content"`
	Outcome         string    `bson:"outcome" json:"outcome"`
	ContactID       string    `bson:"contact_id" json:"contact_id"`
	CheckIn         *CheckIn  `bson:"check_in" json:"check_in"`
	NextStep        *NextStep `bson:"next_step" json:"next_step"`
}

// Prepare normalizes and validates an interaction; now fills a missing time.
func (i *Interaction) Prepare(now time.Time) error {
	v := &ValidationError{}
	i.ChildFields.prepare(v)
	oneOf(v, "channel", i.Channel, Channels)
	if i.OccurredAt.IsZero() {
		i.OccurredAt = now
	}
	i.OccurredAt = i.OccurredAt.UTC()
	if i.OccurredAt.After(now.Add(24 * time.Hour)) {
		v.Add("occurred_at", "must not be in the future")
	}
	if i.DurationSeconds < 0 || i.DurationSeconds > 24*3600 {
		v.Add("duration_seconds", "must be from 0 to 86400")
	}
	i.Content = longText(v, "content", i.Content)
	i.Outcome = shortText(v, "outcome", i.Outcome)
	if c := i.CheckIn; c != nil {
		if c.Lat < -90 || c.Lat > 90 || math.IsNaN(c.Lat) {
			v.Add("check_in.lat", "must be from -90 to 90")
		}
		if c.Lng < -180 || c.Lng > 180 || math.IsNaN(c.Lng) {
			v.Add("check_in.lng", "must be from -180 to 180")
		}
		if c.Accuracy < 0 || c.Accuracy > 100_000 {
			v.Add("check_in.accuracy", "must be from 0 to 100000 metres")
		}
		c.Address = shortText(v, "check_in.address", c.Address)
		if i.Channel != "visit" {
			v.Add("check_in", "only visits have a check-in")
		}
	}
	if n := i.NextStep; n != nil {
		n.Title = NormalizeText(n.Title)
		checkName(v, "next_step.title", n.Title)
		if n.DueAt.IsZero() {
			v.Add("next_step.due_at", "is required")
		}
		n.DueAt = n.DueAt.UTC()
		n.Notes = longText(v, "next_step.notes", n.Notes)
	}
	return v.Err()
}

// Task statuses.
const (
	TaskOpen      = "open"
	TaskDone      = "done"
	TaskCancelled = "cancelled"
)

// Task is a follow-up (跟进计划): something a rep must do for a customer by a time.
type Task struct {
	Meta        `bson:",inline"`
	ChildFields `bson:",inline"`
	Title       string    `bson:"title" json:"title"`
	Notes       string    `bson:"notes" json:"notes"`
	DueAt       time.Time `bson:"due_at" json:"due_at"`
	// AssigneeID is who must do it; by default the customer's owner.
	AssigneeID string `bson:"assignee_id" json:"assignee_id"`
	Status     string `bson:"status" json:"status"`
	// RemindMinutesBefore asks for a reminder this long before DueAt, besides
	// the one at DueAt; 0 means only at DueAt.
	RemindMinutesBefore int        `bson:"remind_minutes_before" json:"remind_minutes_before"`
	CompletedAt         *time.Time `bson:"completed_at" json:"completed_at"`
	// InteractionID is the interaction whose next step created the task.
	InteractionID string `bson:"interaction_id" json:"interaction_id"`
}

// Prepare normalizes and validates a task; now stamps completion.
func (t *Task) Prepare(now time.Time) error {
	v := &ValidationError{}
	t.ChildFields.prepare(v)
	t.Title = NormalizeText(t.Title)
	checkName(v, "title", t.Title)
	t.Notes = longText(v, "notes", t.Notes)
	if t.DueAt.IsZero() {
		v.Add("due_at", "is required")
	}
	t.DueAt = t.DueAt.UTC()
	if t.Status == "" {
		t.Status = TaskOpen
	}
	oneOf(v, "status", t.Status, TaskStatuses)
	if t.RemindMinutesBefore < 0 || t.RemindMinutesBefore > 7*24*60 {
		v.Add("remind_minutes_before", "must be from 0 to 10080 (a week)")
	}
	switch {
	case t.Status == TaskDone && t.CompletedAt == nil:
		at := now.UTC()
		t.CompletedAt = &at
	case t.Status != TaskDone:
		t.CompletedAt = nil
	}
	return v.Err()
}

// Survey is a customer's answer to a satisfaction survey.
type Survey struct {
	Meta        `bson:",inline"`
	ChildFields `bson:",inline"`
	TakenAt     time.Time `bson:"taken_at" json:"taken_at"`
	// CSAT is 1 to 5; NPS is 0 to 10. At least one is required.
	CSAT    *int          `bson:"csat" json:"csat"`
	NPS     *int          `bson:"nps" json:"nps"`
	Ratings SurveyRatings `bson:"ratings" json:"ratings"`
	Comment string        `bson:"comment" json:"comment"`
	// TicketID links a survey sent after a service ticket.
	TicketID string `bson:"ticket_id" json:"ticket_id"`
}

// SurveyRatings are per-topic ratings from 1 to 5; nil means not asked.
type SurveyRatings struct {
	ProductQuality  *int `bson:"product_quality" json:"product_quality"`
	ServiceAttitude *int `bson:"service_attitude" json:"service_attitude"`
	AfterSales      *int `bson:"after_sales" json:"after_sales"`
}

// Prepare validates a survey.
func (s *Survey) Prepare(now time.Time) error {
	v := &ValidationError{}
	s.ChildFields.prepare(v)
	if s.TakenAt.IsZero() {
		s.TakenAt = now
	}
	s.TakenAt = s.TakenAt.UTC()
	if s.CSAT == nil && s.NPS == nil {
		v.Add("csat", "give csat (1-5), nps (0-10) or both")
	}
	score := func(field string, p *int, lo, hi int) {
		if p != nil && (*p < lo || *p > hi) {
			v.Add(field, "must be from %d to %d", lo, hi)
		}
	}
	score("csat", s.CSAT, 1, 5)
	score("nps", s.NPS, 0, 10)
	score("ratings.product_quality", s.Ratings.ProductQuality, 1, 5)
	score("ratings.service_attitude", s.Ratings.ServiceAttitude, 1, 5)
	score("ratings.after_sales", s.Ratings.AfterSales, 1, 5)
	s.Comment = longText(v, "comment", s.Comment)
	return v.Err()
}

// Loyalty ledger entry kinds.
const (
	PointsEarn   = "earn"
	PointsRedeem = "redeem"
	PointsAdjust = "adjust"
	PointsExpire = "expire"
)

// LoyaltyEntry is one line of a customer's points ledger. Entries are never
// changed or deleted; a mistake is corrected with an adjust entry.
type LoyaltyEntry struct {
	Meta        `bson:",inline"`
	ChildFields `bson:",inline"`
	Kind        string `bson:"kind" json:"kind"`
	// Points is positive for earn, redeem and expire (the kind gives the sign)
	// and signed for adjust.
	Points    int64  `bson:"points" json:"points"`
	Reason    string `bson:"reason" json:"reason"`
	Reference string `bson:"reference" json:"reference"`
	// BalanceAfter is what the customer had available as the entry was
	// written, this entry included: a receipt's figure, fixed when written.
	// The customer's balance is the sum of the ledger, not a chain of these.
	BalanceAfter int64 `bson:"balance_after" json:"balance_after"`
}

// SameAs reports whether two entries say the same (customer, kind, points,
// reason, reference), whatever the server wrote on them: a create sent again.
func (e *LoyaltyEntry) SameAs(o *LoyaltyEntry) bool {
	return e.CustomerID == o.CustomerID && e.Kind == o.Kind && e.Points == o.Points &&
		e.Reason == o.Reason && e.Reference == o.Reference
}

// MaxPointsPerEntry bounds one entry, so sums cannot overflow.
const MaxPointsPerEntry = 1_000_000_000

// Prepare validates an entry.
func (e *LoyaltyEntry) Prepare() error {
	v := &ValidationError{}
	e.ChildFields.prepare(v)
	oneOf(v, "kind", e.Kind, PointsKinds)
	switch {
	case e.Points == 0:
		v.Add("points", "must not be 0")
	case e.Kind != PointsAdjust && e.Points < 0:
		v.Add("points", "must be positive; the kind %s gives the sign", e.Kind)
	case e.Points > MaxPointsPerEntry || e.Points < -MaxPointsPerEntry:
		v.Add("points", "must be at most %d", MaxPointsPerEntry)
	}
	e.Reason = shortText(v, "reason", e.Reason)
	if e.Reason == "" {
		v.Add("reason", "is required")
	}
	e.Reference = shortText(v, "reference", e.Reference)
	return v.Err()
}

// Delta is the entry's effect on the balance.
func (e *LoyaltyEntry) Delta() int64 {
	if e.Kind == PointsRedeem || e.Kind == PointsExpire {
		return -e.Points
	}
	return e.Points
}
