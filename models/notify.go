package models

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Device platforms.
const (
	PlatformAndroid = "android"
	PlatformIOS     = "ios"
	PlatformWeb     = "web"
)

// Device is one phone (or browser) of a user that receives pushes.
type Device struct {
	DeviceID   string    `bson:"device_id" json:"device_id"`
	FCMToken   string    `bson:"fcm_token" json:"fcm_token"`
	Platform   string    `bson:"platform" json:"platform"`
	AppVersion string    `bson:"app_version" json:"app_version"`
	Locale     string    `bson:"locale" json:"locale"`
	UpdatedAt  time.Time `bson:"updated_at" json:"updated_at"`
	// SessionID is the sign-in that registered the device: when it ends
	// (logout, a reused refresh token, a password change elsewhere), the
	// device stops getting pushes, whatever id the app registered it under.
	SessionID string `bson:"session_id,omitempty" json:"-"`
}

// Prepare normalizes and validates a device registration.
func (d *Device) Prepare() error {
	v := &ValidationError{}
	d.DeviceID = strings.TrimSpace(d.DeviceID)
	if n := len(d.DeviceID); n < 1 || n > 128 {
		v.Add("device_id", "is required, at most 128 characters")
	}
	d.FCMToken = strings.TrimSpace(d.FCMToken)
	if n := len(d.FCMToken); n < 1 || n > 4096 || strings.ContainsAny(d.FCMToken, " \t\r\n") {
		v.Add("fcm_token", "is required: the registration token the Firebase SDK gave the app")
	}
	if !slices.Contains(Platforms, d.Platform) {
		v.Add("platform", "must be android, ios or web")
	}
	if len(d.AppVersion) > 64 {
		v.Add("app_version", "is at most 64 characters")
	}
	if d.Locale != "" {
		d.Locale = NormalizeLocale(d.Locale)
		checkLocale(v, "locale", d.Locale)
	}
	return v.Err()
}

// DeviceSet is every device of one user; its ID is tenant/user. Versioned
// like a record, so two registrations at once cannot lose each other.
type DeviceSet struct {
	Meta    `bson:",inline"`
	UserID  string   `bson:"user_id" json:"user_id"`
	Devices []Device `bson:"devices" json:"devices"`
}

// DeviceSetID is the id of a user's device set.
func DeviceSetID(tenant, user string) string { return tenant + "/" + user }

// Notification kinds. Urgent kinds are pushed even in the recipient's quiet
// hours: the follow-ups a rep set for themselves (they chose the time) and SLA
// breaches of urgent tickets. The others wait until quiet hours end.
const (
	NotifyTaskDue      = "task_due"
	NotifyTaskReminder = "task_reminder" // the earlier reminder, before the due time
	// NotifyTaskOverdue goes to the assignee's manager a grace period after
	// an open task's due time; NotifyTaskOverdueAgain later to theirs.
	NotifyTaskOverdue      = "task_overdue"
	NotifyTaskOverdueAgain = "task_overdue_again"
	// NotifySLAWarning goes to a ticket's assignee before its SLA runs out;
	// NotifySLABreach to the team's manager when it has.
	NotifySLAWarning = "ticket_sla_warning"
	NotifySLABreach  = "ticket_sla_breach"
	// NotifyDigest is a manager's daily summary of their team.
	NotifyDigest = "digest"
)

// Notification is one entry of a user's in-app inbox: a synced table, so a
// phone that missed the push still shows it after its next sync. The owner is
// the recipient, and only the recipient sees it.
type Notification struct {
	Meta `bson:",inline"`
	// UserID is the recipient.
	UserID     string     `bson:"user_id" json:"user_id"`
	Kind       string     `bson:"kind" json:"kind"`
	Title      string     `bson:"title" json:"title"`
	Body       string     `bson:"body" json:"body"`
	TaskID     string     `bson:"task_id" json:"task_id"`
	CustomerID string     `bson:"customer_id" json:"customer_id"`
	TicketID   string     `bson:"ticket_id" json:"ticket_id"`
	ReadAt     *time.Time `bson:"read_at" json:"read_at"`
	// CollapseKey makes a repeat replace the earlier notification on the phone.
	CollapseKey string `bson:"collapse_key" json:"collapse_key"`
}

// SystemUserID is the author of what the server writes on its own
// (notifications, reminders' effects).
const SystemUserID = "system"

// SystemActor is the server acting in a tenant.
func SystemActor(tenant string) Actor {
	return Actor{UserID: SystemUserID, TenantID: tenant, Role: RoleAdmin}
}

// Reminder states.
const (
	ReminderScheduled = "scheduled"
	ReminderSent      = "sent"
	ReminderCancelled = "cancelled"
	ReminderFailed    = "failed"
)

// Reminder is the truth about one reminder: when it fires, about what, and
// what became of it. Its ID is tenant/subject/kind (subject: a task, a ticket,
// or digest:<user>), so a subject has at most one of each kind; rescheduling
// moves FireAt, and each firing is told apart from earlier ones by its FireAt
// (see DeliveryID). Who receives it is decided when it fires (the manager of
// the assignee then), so the recipient is not stored.
type Reminder struct {
	ID       string `bson:"_id" json:"id"`
	TenantID string `bson:"tenant_id" json:"-"`
	Kind     string `bson:"kind" json:"kind"`
	TaskID   string `bson:"task_id,omitempty" json:"task_id,omitempty"`
	TicketID string `bson:"ticket_id,omitempty" json:"ticket_id,omitempty"`
	// UserID is the person the subject is about: the task's or ticket's
	// assignee, the manager of a digest.
	UserID    string     `bson:"user_id" json:"user_id"`
	FireAt    time.Time  `bson:"fire_at" json:"fire_at"`
	State     string     `bson:"state" json:"state"`
	Attempts  int        `bson:"attempts" json:"attempts"`
	LastError string     `bson:"last_error,omitempty" json:"last_error,omitempty"`
	SentAt    *time.Time `bson:"sent_at,omitempty" json:"sent_at,omitempty"`
	UpdatedAt time.Time  `bson:"updated_at" json:"updated_at"`
}

// ReminderID is the id of a subject's reminder of one kind.
func ReminderID(tenant, subject, kind string) string { return tenant + "/" + subject + "/" + kind }

// DigestSubject is the subject of a manager's digest reminders.
func DigestSubject(user string) string { return "digest:" + user }

// DeliveryID names one push of one firing of a reminder to one device;
// inserting it is the claim that makes the push happen once.
func DeliveryID(reminderID string, fireAt time.Time, deviceID string) string {
	return fmt.Sprintf("%s/%d/%s", reminderID, fireAt.UnixMilli(), deviceID)
}

// PlannedReminder is a reminder a subject calls for.
type PlannedReminder struct {
	Kind   string
	FireAt time.Time
}

// TaskReminderKinds are every kind PlanTaskReminders may return, so that the
// ones a task no longer calls for can be cancelled.
var TaskReminderKinds = []string{NotifyTaskDue, NotifyTaskReminder, NotifyTaskOverdue, NotifyTaskOverdueAgain}

// PlanTaskReminders returns the reminders an open, assigned task calls for:
// one at its due time, one RemindMinutesBefore earlier when that is set, and
// the escalations after it. A done, cancelled, deleted or unassigned task
// calls for none.
func PlanTaskReminders(t *Task, st ReminderSettings) []PlannedReminder {
	if t.Deleted() || t.Status != TaskOpen || t.AssigneeID == "" || t.DueAt.IsZero() {
		return nil
	}
	plan := []PlannedReminder{{NotifyTaskDue, t.DueAt},
		{NotifyTaskOverdue, t.DueAt.Add(time.Duration(st.OverdueAfterMinutes) * time.Minute)}}
	if t.RemindMinutesBefore > 0 {
		plan = append(plan, PlannedReminder{NotifyTaskReminder, t.DueAt.Add(-time.Duration(t.RemindMinutesBefore) * time.Minute)})
	}
	if st.SecondEscalationAfterMinutes > 0 {
		plan = append(plan, PlannedReminder{NotifyTaskOverdueAgain, t.DueAt.Add(time.Duration(st.SecondEscalationAfterMinutes) * time.Minute)})
	}
	return plan
}

// TicketReminderKinds are every kind PlanTicketReminders may return.
var TicketReminderKinds = []string{NotifySLAWarning, NotifySLABreach}

// PlanTicketReminders returns the SLA reminders of a ticket still being
// worked on: a warning to its assignee before the SLA runs out, and the
// breach to the team's manager when it has.
func PlanTicketReminders(t *Ticket, st ReminderSettings) []PlannedReminder {
	if t.Deleted() || t.SLADueAt.IsZero() || t.AssigneeID == "" || t.Status == TicketResolved || t.Status == TicketClosed {
		return nil
	}
	return []PlannedReminder{
		{NotifySLAWarning, t.SLADueAt.Add(-time.Duration(st.SLAWarningMinutes) * time.Minute)},
		{NotifySLABreach, t.SLADueAt},
	}
}

// Urgent reports whether a notification goes through quiet hours.
func Urgent(kind, ticketPriority string) bool {
	switch kind {
	case NotifyTaskDue, NotifyTaskReminder:
		return true
	case NotifySLABreach:
		return ticketPriority == PriorityUrgent
	}
	return false
}

// QuietHours is a daily span, in the user's time zone, when only urgent
// notifications are pushed; Start after End spans midnight (22:00–07:00).
type QuietHours struct {
	Start string `bson:"start" json:"start"` // HH:MM
	End   string `bson:"end" json:"end"`
}

func (q QuietHours) validate(v *ValidationError, field string) {
	for name, hm := range map[string]string{"start": q.Start, "end": q.End} {
		if _, err := time.Parse("15:04", hm); err != nil {
			v.Add(field+"."+name, "must be a time of day such as 22:00")
		}
	}
	if q.Start == q.End {
		v.Add(field, "start and end must differ")
	}
}

// EndsAfter returns when the quiet hours around t end, or false when t is not
// in quiet hours; loc is the user's time zone.
func (q *QuietHours) EndsAfter(t time.Time, loc *time.Location) (time.Time, bool) {
	if q == nil {
		return time.Time{}, false
	}
	start, err1 := time.Parse("15:04", q.Start)
	end, err2 := time.Parse("15:04", q.End)
	if err1 != nil || err2 != nil {
		return time.Time{}, false
	}
	local := t.In(loc)
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	at := func(d time.Time, hm time.Time) time.Time {
		return time.Date(d.Year(), d.Month(), d.Day(), hm.Hour(), hm.Minute(), 0, 0, loc)
	}
	for _, d := range []time.Time{day.AddDate(0, 0, -1), day} {
		from := at(d, start)
		to := at(d, end)
		if !to.After(from) {
			to = at(d.AddDate(0, 0, 1), end)
		}
		if !local.Before(from) && local.Before(to) {
			return to, true
		}
	}
	return time.Time{}, false
}

// NextLocal returns the first time after t when the clock in loc reads hm (HH:MM).
func NextLocal(t time.Time, hm string, loc *time.Location) time.Time {
	clock, err := time.Parse("15:04", hm)
	if err != nil {
		clock, _ = time.Parse("15:04", DefaultDigestTime)
	}
	local := t.In(loc)
	next := time.Date(local.Year(), local.Month(), local.Day(), clock.Hour(), clock.Minute(), 0, 0, loc)
	if !next.After(t) {
		next = time.Date(local.Year(), local.Month(), local.Day()+1, clock.Hour(), clock.Minute(), 0, 0, loc)
	}
	return next
}

// TextArgs are what a notification's words are made of.
type TextArgs struct {
	// Subject is the task's or ticket's title; Person the assignee's name.
	Subject, Person string
	// At is the due time (tasks) or SLA deadline (tickets).
	At     time.Time
	Digest DigestCounts
}

// DigestCounts sum up a manager's team for the daily digest.
type DigestCounts struct {
	DueToday       int `json:"due_today"`
	Overdue        int `json:"overdue"`
	NewCustomers   int `json:"new_customers"`
	TicketsPastSLA int `json:"tickets_past_sla"`
}

// NotificationText is the title and body of a notification in the user's
// locale (Chinese for zh*, English otherwise), times in their zone.
func NotificationText(kind, locale string, loc *time.Location, a TextArgs) (title, body string) {
	at := a.At.In(loc).Format("01-02 15:04")
	d := a.Digest
	if strings.HasPrefix(strings.ToLower(locale), "zh") {
		switch kind {
		case NotifyTaskReminder:
			return "跟进提醒", fmt.Sprintf("%s 将于 %s 到期", a.Subject, at)
		case NotifyTaskDue:
			return "跟进到期", fmt.Sprintf("%s 现在到期（%s）", a.Subject, at)
		case NotifyTaskOverdue, NotifyTaskOverdueAgain:
			return "跟进逾期", fmt.Sprintf("%s 的跟进「%s」已于 %s 逾期", a.Person, a.Subject, at)
		case NotifySLAWarning:
			return "工单即将超时", fmt.Sprintf("工单「%s」将于 %s 超过时限", a.Subject, at)
		case NotifySLABreach:
			return "工单已超时", fmt.Sprintf("%s 的工单「%s」已于 %s 超过时限", a.Person, a.Subject, at)
		case NotifyDigest:
			return "团队日报", fmt.Sprintf("今日到期跟进 %d 个，逾期 %d 个，新客户 %d 个，超时工单 %d 个",
				d.DueToday, d.Overdue, d.NewCustomers, d.TicketsPastSLA)
		}
	}
	switch kind {
	case NotifyTaskReminder:
		return "Follow-up coming up", fmt.Sprintf("%s is due at %s", a.Subject, at)
	case NotifyTaskDue:
		return "Follow-up due", fmt.Sprintf("%s is due now (%s)", a.Subject, at)
	case NotifyTaskOverdue, NotifyTaskOverdueAgain:
		return "Overdue follow-up", fmt.Sprintf("%s's follow-up \"%s\" was due at %s", a.Person, a.Subject, at)
	case NotifySLAWarning:
		return "Ticket nearing its SLA", fmt.Sprintf("Ticket \"%s\" must be resolved by %s", a.Subject, at)
	case NotifySLABreach:
		return "Ticket past its SLA", fmt.Sprintf("%s's ticket \"%s\" passed its SLA at %s", a.Person, a.Subject, at)
	case NotifyDigest:
		return "Your team today", fmt.Sprintf("%d follow-ups due today, %d overdue, %d new customers, %d tickets past SLA",
			d.DueToday, d.Overdue, d.NewCustomers, d.TicketsPastSLA)
	}
	return kind, a.Subject
}
