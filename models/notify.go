package models

import (
	"fmt"
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
	switch d.Platform {
	case PlatformAndroid, PlatformIOS, PlatformWeb:
	default:
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

// Notification kinds.
const (
	NotifyTaskDue      = "task_due"
	NotifyTaskReminder = "task_reminder" // the earlier reminder, before the due time
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

// Reminder is the truth about one reminder of a task: when it fires, to whom,
// and what became of it. Its ID is tenant/task/kind, so a task has at most one
// of each kind; rescheduling moves FireAt, and each firing is told apart from
// the earlier ones by its FireAt (see DeliveryID).
type Reminder struct {
	ID        string    `bson:"_id" json:"id"`
	TenantID  string    `bson:"tenant_id" json:"-"`
	TaskID    string    `bson:"task_id" json:"task_id"`
	Kind      string    `bson:"kind" json:"kind"`
	UserID    string    `bson:"user_id" json:"user_id"`
	FireAt    time.Time `bson:"fire_at" json:"fire_at"`
	DueAt     time.Time `bson:"due_at" json:"due_at"`
	State     string    `bson:"state" json:"state"`
	Attempts  int       `bson:"attempts" json:"attempts"`
	LastError string    `bson:"last_error,omitempty" json:"last_error,omitempty"`
	SentAt    *time.Time `bson:"sent_at,omitempty" json:"sent_at,omitempty"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at"`
}

// ReminderID is the id of a task's reminder of one kind.
func ReminderID(tenant, task, kind string) string { return tenant + "/" + task + "/" + kind }

// DeliveryID names one push of one firing of a reminder to one device;
// inserting it is the claim that makes the push happen once.
func DeliveryID(reminderID string, fireAt time.Time, deviceID string) string {
	return fmt.Sprintf("%s/%d/%s", reminderID, fireAt.UnixMilli(), deviceID)
}

// PlannedReminder is a reminder a task calls for.
type PlannedReminder struct {
	Kind   string
	FireAt time.Time
}

// PlanReminders returns the reminders an open, assigned task calls for: one at
// its due time, and one RemindMinutesBefore earlier when that is set. A done,
// cancelled, deleted or unassigned task calls for none.
func PlanReminders(t *Task) []PlannedReminder {
	if t.Deleted() || t.Status != TaskOpen || t.AssigneeID == "" || t.DueAt.IsZero() {
		return nil
	}
	plan := []PlannedReminder{{Kind: NotifyTaskDue, FireAt: t.DueAt}}
	if t.RemindMinutesBefore > 0 {
		plan = append(plan, PlannedReminder{Kind: NotifyTaskReminder,
			FireAt: t.DueAt.Add(-time.Duration(t.RemindMinutesBefore) * time.Minute)})
	}
	return plan
}

// ReminderKinds are every kind PlanReminders may return, so that the ones a
// task no longer calls for can be cancelled.
var ReminderKinds = []string{NotifyTaskDue, NotifyTaskReminder}

// TaskReminderText is the title and body of a task reminder in the user's
// locale (Chinese for zh*, English otherwise), with the due time in their zone.
func TaskReminderText(kind, locale string, loc *time.Location, task *Task) (title, body string) {
	due := task.DueAt.In(loc).Format("15:04")
	if strings.HasPrefix(strings.ToLower(locale), "zh") {
		if kind == NotifyTaskReminder {
			return "跟进提醒", fmt.Sprintf("%s 将于 %s 到期", task.Title, due)
		}
		return "跟进到期", fmt.Sprintf("%s 现在到期（%s）", task.Title, due)
	}
	if kind == NotifyTaskReminder {
		return "Follow-up coming up", fmt.Sprintf("%s is due at %s", task.Title, due)
	}
	return "Follow-up due", fmt.Sprintf("%s is due now (%s)", task.Title, due)
}
