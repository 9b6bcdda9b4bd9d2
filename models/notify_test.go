package models

import (
	"testing"
	"time"
)

func TestQuietHoursEndWhereTheyShouldInTheUsersZone(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	night := &QuietHours{Start: "22:00", End: "07:00"}
	lunch := &QuietHours{Start: "12:00", End: "14:00"}
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, berlin) }
	for _, c := range []struct {
		name  string
		q     *QuietHours
		t     time.Time
		quiet bool
		end   time.Time
	}{
		{"late evening", night, at(2026, 11, 23, 23, 0), true, at(2026, 11, 24, 7, 0)},
		{"just before the end", night, at(2026, 11, 24, 6, 59), true, at(2026, 11, 24, 7, 0)},
		{"at the end", night, at(2026, 11, 24, 7, 0), false, time.Time{}},
		{"just before the start", night, at(2026, 11, 23, 21, 59), false, time.Time{}},
		{"at the start", night, at(2026, 11, 23, 22, 0), true, at(2026, 11, 24, 7, 0)},
		{"within a daytime span", lunch, at(2026, 11, 23, 13, 0), true, at(2026, 11, 23, 14, 0)},
		{"after a daytime span", lunch, at(2026, 11, 23, 15, 0), false, time.Time{}},
		{"across the spring DST change", night, at(2026, 3, 29, 1, 30), true, at(2026, 3, 29, 7, 0)},
		{"none set", nil, at(2026, 11, 23, 23, 0), false, time.Time{}},
	} {
		end, quiet := c.q.EndsAfter(c.t.UTC(), berlin)
		if quiet != c.quiet || !end.Equal(c.end) {
			t.Errorf("%s: quiet %v until %v, want %v until %v", c.name, quiet, end, c.quiet, c.end)
		}
	}
}

func TestNextLocalIsTheNextTimeTheClockReadsIt(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	noonUTC := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		loc  *time.Location
		from time.Time
		hm   string
		want time.Time
	}{
		{shanghai, noonUTC, "08:00", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)},
		{berlin, noonUTC, "08:00", time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)},
		{berlin, noonUTC, "18:30", time.Date(2026, 11, 22, 17, 30, 0, 0, time.UTC)},
		{shanghai, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), "08:00", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
		{berlin, noonUTC, "not a time", time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)},
	} {
		if got := NextLocal(c.from, c.hm, c.loc); !got.Equal(c.want) {
			t.Errorf("%s in %s after %s: %s, want %s", c.hm, c.loc, c.from, got, c.want)
		}
	}
}

func TestRemindersPlannedForTasksAndTickets(t *testing.T) {
	st := Settings{}.WithDefaults().Reminders
	due := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	open := Task{DueAt: due, AssigneeID: "u1", Status: TaskOpen, RemindMinutesBefore: 15}
	plan := PlanTaskReminders(&open, st)
	want := map[string]time.Time{NotifyTaskDue: due, NotifyTaskReminder: due.Add(-15 * time.Minute), NotifyTaskOverdue: due.Add(time.Hour)}
	if len(plan) != len(want) {
		t.Fatalf("plan %v", plan)
	}
	for _, p := range plan {
		if !want[p.Kind].Equal(p.FireAt) {
			t.Errorf("%s at %s, want %s", p.Kind, p.FireAt, want[p.Kind])
		}
	}
	st.SecondEscalationAfterMinutes = 240
	if plan := PlanTaskReminders(&open, st); len(plan) != 4 {
		t.Errorf("with a second escalation: %v", plan)
	}
	for name, task := range map[string]Task{
		"done":       {DueAt: due, AssigneeID: "u1", Status: TaskDone},
		"unassigned": {DueAt: due, Status: TaskOpen},
		"deleted":    {Meta: Meta{DeletedAt: &due}, DueAt: due, AssigneeID: "u1", Status: TaskOpen},
	} {
		if plan := PlanTaskReminders(&task, st); plan != nil {
			t.Errorf("%s task: %v", name, plan)
		}
	}
	ticket := Ticket{SLADueAt: due, AssigneeID: "u1", Status: TicketInProgress, Priority: PriorityUrgent}
	if plan := PlanTicketReminders(&ticket, st); len(plan) != 2 || !plan[0].FireAt.Equal(due.Add(-time.Hour)) || !plan[1].FireAt.Equal(due) {
		t.Errorf("ticket plan %v", plan)
	}
	ticket.Status = TicketResolved
	if plan := PlanTicketReminders(&ticket, st); plan != nil {
		t.Errorf("resolved ticket: %v", plan)
	}
	for _, c := range []struct {
		kind, priority string
		urgent         bool
	}{
		{NotifyTaskDue, "", true}, {NotifyTaskReminder, "", true}, {NotifyTaskOverdue, "", false}, {NotifyDigest, "", false},
		{NotifySLABreach, PriorityUrgent, true}, {NotifySLABreach, PriorityHigh, false}, {NotifySLAWarning, PriorityUrgent, false},
	} {
		if got := Urgent(c.kind, c.priority); got != c.urgent {
			t.Errorf("Urgent(%s, %s) = %v", c.kind, c.priority, got)
		}
	}
}

func TestQuietHoursAndReminderSettingsAreValidated(t *testing.T) {
	for name, q := range map[string]QuietHours{"not a time": {Start: "10pm", End: "07:00"}, "same": {Start: "22:00", End: "22:00"}, "half": {Start: "22:00"}} {
		p := UserPatch{QuietHours: &q}
		if err := p.Validate(); err == nil {
			t.Errorf("quiet hours %s accepted", name)
		}
	}
	clear := UserPatch{QuietHours: &QuietHours{}}
	var u User
	u.QuietHours = &QuietHours{Start: "22:00", End: "07:00"}
	if err := clear.Validate(); err != nil || clear.Apply(&u)["quiet_hours"] != nil || u.QuietHours != nil {
		t.Errorf("clearing quiet hours: %v %+v", err, u.QuietHours)
	}
	for name, r := range map[string]ReminderSettings{
		"overdue too late":     {OverdueAfterMinutes: 20000},
		"second before first":  {OverdueAfterMinutes: 60, SecondEscalationAfterMinutes: 30},
		"digest time":          {DigestTime: "8 o'clock"},
		"negative sla warning": {SLAWarningMinutes: -5},
	} {
		st := Settings{Reminders: r}.WithDefaults()
		if err := st.Validate(); err == nil {
			t.Errorf("reminder settings %s accepted", name)
		}
	}
	if err := (Settings{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
