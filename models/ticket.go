package models

import (
	"slices"
	"time"
)

// Ticket priorities, most urgent first.
const (
	PriorityUrgent = "urgent"
	PriorityHigh   = "high"
	PriorityNormal = "normal"
	PriorityLow    = "low"
)

// TicketPriorities lists the priorities, most urgent first.
var TicketPriorities = []string{PriorityUrgent, PriorityHigh, PriorityNormal, PriorityLow}

// TicketTypes are the kinds of service request.
var TicketTypes = []string{"complaint", "question", "repair", "return", "installation", "suggestion", "other"}

// Ticket statuses.
const (
	TicketNew        = "new"
	TicketAssigned   = "assigned"
	TicketInProgress = "in_progress"
	TicketResolved   = "resolved"
	TicketClosed     = "closed"
)

// ticketMoves is the documented workflow (docs/api.md, "Tickets"): from each
// status, the statuses it may move to, one step at a time. Moving back from
// resolved or closed to in_progress is a reopen. A ticket is created new and
// the server assigns it at once, so a create may ask for new or assigned only.
var ticketMoves = map[string][]string{
	TicketNew:        {TicketAssigned},
	TicketAssigned:   {TicketInProgress},
	TicketInProgress: {TicketResolved},
	TicketResolved:   {TicketClosed, TicketInProgress},
	TicketClosed:     {TicketInProgress},
}

// TicketComment is one note on a ticket.
type TicketComment struct {
	ID       string    `bson:"id" json:"id"`
	AuthorID string    `bson:"author_id" json:"author_id"`
	Body     string    `bson:"body" json:"body"`
	At       time.Time `bson:"at" json:"at"`
}

// Ticket is a service request or complaint (投诉/工单).
type Ticket struct {
	Meta        `bson:",inline"`
	ChildFields `bson:",inline"`
	Type        string `bson:"type" json:"type"`
	Priority    string `bson:"priority" json:"priority"`
	Status      string `bson:"status" json:"status"`
	Title       string `bson:"title" json:"title"`
	Description string `bson:"description" json:"description"`
	// AssigneeID is chosen by the server when left empty (see Settings.SupportTeamID).
	AssigneeID    string          `bson:"assignee_id" json:"assignee_id"`
	SLADueAt      time.Time       `bson:"sla_due_at" json:"sla_due_at"`
	ResolvedAt    *time.Time      `bson:"resolved_at" json:"resolved_at"`
	ClosedAt      *time.Time      `bson:"closed_at" json:"closed_at"`
	Comments      []TicketComment `bson:"comments" json:"comments"`
	StatusHistory []Transition    `bson:"status_history" json:"status_history"`
}

// Prepare validates a ticket's client-written fields.
func (t *Ticket) Prepare() error {
	v := &ValidationError{}
	t.ChildFields.prepare(v)
	oneOf(v, "type", t.Type, TicketTypes)
	if t.Priority == "" {
		t.Priority = PriorityNormal
	}
	oneOf(v, "priority", t.Priority, TicketPriorities)
	t.Title = NormalizeText(t.Title)
	checkName(v, "title", t.Title)
	t.Description = longText(v, "description", t.Description)
	if t.Status == "" {
		t.Status = TicketNew
	}
	oneOf(v, "status", t.Status, TicketStatuses)
	return v.Err()
}

// CheckTicketMove validates a status change from one status to another.
func CheckTicketMove(from, to string) error {
	if from == to || slices.Contains(ticketMoves[from], to) {
		return nil
	}
	return &ValidationError{Fields: []FieldError{{Field: "status",
		Message: "a " + from + " ticket can move to " + joinOr(ticketMoves[from]) + ", not " + to}}}
}

// StampStatus records a status change at now, setting the resolved and closed times.
func (t *Ticket) StampStatus(from, by string, now time.Time) {
	if from == t.Status {
		return
	}
	t.StatusHistory = append(t.StatusHistory, Transition{From: from, To: t.Status, By: by, At: now})
	switch t.Status {
	case TicketResolved:
		t.ResolvedAt = &now
	case TicketClosed:
		t.ClosedAt = &now
	case TicketInProgress, TicketAssigned:
		t.ResolvedAt, t.ClosedAt = nil, nil
	}
}

func joinOr(list []string) string {
	s := ""
	for i, x := range list {
		switch {
		case i == 0:
		case i == len(list)-1:
			s += " or "
		default:
			s += ", "
		}
		s += x
	}
	return s
}
