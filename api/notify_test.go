package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

func (h *harness) devicesOf(a account) []any {
	h.t.Helper()
	return h.call("GET", "/v1/devices", a, nil, 200)["data"].([]any)
}

func TestDevicesRegisterRefreshMoveAndLeave(t *testing.T) {
	w := newWorld(t)
	h := w.h
	dev := map[string]any{"device_id": "phone-1", "fcm_token": "token-a", "platform": "android", "app_version": "2.3.0", "locale": "zh-cn"}
	got := h.call("POST", "/v1/devices", w.r1, dev, 200)
	if got["locale"] != "zh-CN" || got["fcm_token"] != "token-a" {
		t.Fatalf("registered %v", got)
	}
	dev["fcm_token"] = "token-b" // the Firebase SDK rotated the token
	h.call("POST", "/v1/devices", w.r1, dev, 200)
	if list := h.devicesOf(w.r1); len(list) != 1 || list[0].(map[string]any)["fcm_token"] != "token-b" {
		t.Fatalf("after a refresh: %v", list)
	}
	if _, err := h.store.TokenOwnerOf(context.Background(), w.admin.tenant, "token-a"); err == nil {
		t.Fatal("the replaced token is still registered")
	}
	// The phone goes to a colleague, who signs in on it: the token follows.
	h.call("POST", "/v1/devices", w.r1b, map[string]any{"device_id": "shared", "fcm_token": "token-b", "platform": "android"}, 200)
	if list := h.devicesOf(w.r1); len(list) != 0 {
		t.Fatalf("the first user still has the moved token: %v", list)
	}
	if list := h.devicesOf(w.r1b); len(list) != 1 {
		t.Fatalf("the second user: %v", list)
	}
	h.call("DELETE", "/v1/devices/shared", w.r1b, nil, 204)
	h.call("DELETE", "/v1/devices/never-registered", w.r1b, nil, 204)
	if list := h.devicesOf(w.r1b); len(list) != 0 {
		t.Fatalf("after delete: %v", list)
	}

	// Logout removes every device the session registered, under whatever
	// id (the harness signs in as phone-1), and none of another session's.
	laptop := h.login(w.r2.email, w.r2.password)
	h.call("POST", "/v1/devices", laptop, map[string]any{"device_id": "laptop", "fcm_token": "token-r2-laptop", "platform": "web"}, 200)
	h.call("POST", "/v1/devices", w.r2, map[string]any{"device_id": "phone-1", "fcm_token": "token-r2", "platform": "ios"}, 200)
	h.call("POST", "/v1/devices", w.r2, map[string]any{"device_id": "tablet", "fcm_token": "token-r2-tab", "platform": "ios"}, 200)
	h.expect(h.do("POST", "/v1/auth/logout", w.r2.access, nil), 204, "logout")
	if list := h.devicesOf(laptop); len(list) != 1 || list[0].(map[string]any)["device_id"] != "laptop" {
		t.Fatalf("after logging out the session of phone-1 and tablet: %v", list)
	}
	for _, token := range []string{"token-r2", "token-r2-tab"} {
		if _, err := h.store.TokenOwnerOf(context.Background(), w.admin.tenant, token); err == nil {
			t.Fatalf("%s still has an owner after the logout", token)
		}
	}
}

func TestDeviceRegistrationRejectsBadInputAndWritesNothing(t *testing.T) {
	w := newWorld(t)
	h := w.h
	for name, body := range map[string]map[string]any{
		"no token":       {"device_id": "p", "platform": "android"},
		"token spaces":   {"device_id": "p", "fcm_token": "a b", "platform": "android"},
		"no device id":   {"fcm_token": "t", "platform": "android"},
		"platform":       {"device_id": "p", "fcm_token": "t", "platform": "symbian"},
		"locale":         {"device_id": "p", "fcm_token": "t", "platform": "ios", "locale": "not a locale!"},
		"wrong type":     {"device_id": 7, "fcm_token": "t", "platform": "ios"},
		"unknown fields": {"device_id": "p", "fcm_token": "t", "platform": "ios", "colour": "red"},
	} {
		r := h.do("POST", "/v1/devices", w.r1.access, body)
		if r.status != 422 && r.status != 400 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	h.expect(h.do("POST", "/v1/devices", w.r1.access, "{not json"), 400, "malformed JSON")
	if list := h.devicesOf(w.r1); len(list) != 0 {
		t.Fatalf("bad registrations wrote %v", list)
	}
}

// A notification belongs to its recipient alone: listed, read and synced by
// them, not by their manager or an admin.
func TestInboxIsTheRecipientsAlone(t *testing.T) {
	w := newWorld(t)
	h := w.h
	n := models.Notification{UserID: w.r1.id, Kind: models.NotifyTaskDue, Title: "Follow-up due", Body: "Call Wang", CollapseKey: "task:x"}
	n.TenantID = w.admin.tenant
	stored, err := h.crm.Notify(context.Background(), n, models.IDFor("event-1"))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := h.crm.Notify(context.Background(), n, models.IDFor("event-1")); err != nil || again.ID != stored.ID {
		t.Fatalf("the same event notified twice: %v %v", again.ID, err)
	}
	list := h.call("GET", "/v1/notifications?read=false", w.r1, nil, 200)["data"].([]any)
	if len(list) != 1 {
		t.Fatalf("inbox %v", list)
	}
	for _, other := range []account{w.m1, w.admin, w.r1b} {
		if l := h.call("GET", "/v1/notifications", other, nil, 200)["data"].([]any); len(l) != 0 {
			t.Fatalf("%s sees someone else's inbox: %v", other.email, l)
		}
		h.call("POST", "/v1/notifications/"+stored.ID+"/read", other, nil, 404)
	}
	// The server's writing of a note is not audited; the reader's is.
	if audit := h.call("GET", "/v1/audit?record_id="+stored.ID, w.admin, nil, 200)["data"].([]any); len(audit) != 0 {
		t.Fatalf("a new note was audited: %v", audit)
	}
	read := h.call("POST", "/v1/notifications/"+stored.ID+"/read", w.r1, nil, 200)
	if read["read_at"] == nil {
		t.Fatalf("read %v", read)
	}
	audit := h.call("GET", "/v1/audit?record_id="+stored.ID, w.admin, nil, 200)["data"].([]any)
	if len(audit) != 1 || audit[0].(map[string]any)["actor_id"] != w.r1.id {
		t.Fatalf("marking read audited as %v", audit)
	}
	if l := h.call("GET", "/v1/notifications?read=false", w.r1, nil, 200)["data"].([]any); len(l) != 0 {
		t.Fatalf("unread after reading: %v", l)
	}
	kinds, _, _ := h.pullAll(w.r1, "null")
	if len(kinds["notifications/created"]) != 1 {
		t.Fatalf("the recipient's pull: %v", kinds)
	}
	for _, other := range []account{w.m1, w.admin} {
		if kinds, _, _ := h.pullAll(other, "null"); len(kinds["notifications/created"]) != 0 {
			t.Fatalf("%s pulled someone else's notification: %v", other.email, kinds)
		}
	}
	// Devices may mark read through sync, never write notifications.
	h.call("POST", "/v1/notifications", w.r1, map[string]any{"title": "x"}, 405)
}

func TestTaskRemindersFollowTheTask(t *testing.T) {
	w := newWorld(t)
	h := w.h
	c := h.newCustomer(w.r1, map[string]any{"name": "Li Lei"})["id"].(string)
	due := h.clock.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	task := h.call("POST", "/v1/tasks", w.r1, map[string]any{"customer_id": c, "title": "Visit", "due_at": due.Format(time.RFC3339),
		"remind_minutes_before": 15}, 201)["id"].(string)
	reminders := h.call("GET", "/v1/tasks/"+task+"/reminders", w.r1, nil, 200)["data"].([]any)
	if len(reminders) != 3 {
		t.Fatalf("reminders %v", reminders)
	}
	for _, r := range reminders {
		r := r.(map[string]any)
		fire, _ := time.Parse(time.RFC3339, r["fire_at"].(string))
		want := map[any]time.Time{models.NotifyTaskDue: due, models.NotifyTaskReminder: due.Add(-15 * time.Minute),
			models.NotifyTaskOverdue: due.Add(time.Hour)}[r["kind"]]
		if r["state"] != models.ReminderScheduled || !fire.Equal(want) {
			t.Fatalf("reminder %v, want at %s", r, want)
		}
	}
	if next, ok, err := h.schedule.Next(context.Background()); err != nil || !ok || !next.Equal(due.Add(-15*time.Minute)) {
		t.Fatalf("schedule's next: %v %v %v", next, ok, err)
	}
	h.call("PATCH", "/v1/tasks/"+task, w.r1, map[string]any{"status": "done"}, 200)
	reminders = h.call("GET", "/v1/tasks/"+task+"/reminders", w.r1, nil, 200)["data"].([]any)
	if len(reminders) != 3 {
		t.Fatalf("after done, reminders %v", reminders)
	}
	for _, r := range reminders {
		if r.(map[string]any)["state"] != models.ReminderCancelled {
			t.Fatalf("after done: %v", r)
		}
	}
	if _, ok, _ := h.schedule.Next(context.Background()); ok {
		t.Fatal("a done task is still on the schedule")
	}
	h.call("GET", "/v1/tasks/"+task+"/reminders", w.r2, nil, 404)
}

// A follow-up created offline is scheduled when its push arrives; one
// rescheduled offline moves; one completed offline is cancelled.
func TestTasksFromSyncAreScheduled(t *testing.T) {
	w := newWorld(t)
	h := w.h
	c := h.newCustomer(w.r1, map[string]any{"name": "Offline Co"})["id"].(string)
	phone := h.device(w.r1, "phone-9")
	due := h.clock.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	phone.push(map[string]any{"tasks": map[string]any{"created": []any{map[string]any{
		"id": "taskoffline000001", "customer_id": c, "title": "Offline follow-up", "due_at": due.UnixMilli(), "status": "open"}}}}, 200)
	state := func() map[string]any {
		out := map[string]any{}
		for _, r := range h.call("GET", "/v1/tasks/taskoffline000001/reminders", w.r1, nil, 200)["data"].([]any) {
			r := r.(map[string]any)
			out[r["kind"].(string)] = r["state"].(string) + "@" + r["fire_at"].(string)
		}
		return out
	}
	created := state()
	if got := created[models.NotifyTaskDue]; got != "scheduled@"+due.Format(time.RFC3339) {
		t.Fatalf("after the offline create: %v", created)
	}
	phone.pull()
	later := due.Add(24 * time.Hour)
	phone.push(map[string]any{"tasks": map[string]any{"updated": []any{updated("taskoffline000001", map[string]any{"due_at": later.UnixMilli()})}}}, 200)
	if got := state()[models.NotifyTaskDue]; got != "scheduled@"+later.Format(time.RFC3339) {
		t.Fatalf("after the offline reschedule: %v", state())
	}
	phone.pull()
	phone.push(map[string]any{"tasks": map[string]any{"updated": []any{updated("taskoffline000001", map[string]any{"status": "done"})}}}, 200)
	done := state()
	if len(done) != len(created) {
		t.Fatalf("after the offline completion, reminders %v; after the create %v", done, created)
	}
	for kind, st := range done {
		if !strings.HasPrefix(st.(string), models.ReminderCancelled) {
			t.Fatalf("after the offline completion, %s is %v", kind, st)
		}
	}
}

func TestUsersSetAndClearTheirQuietHours(t *testing.T) {
	w := newWorld(t)
	h := w.h
	got := h.call("PATCH", "/v1/users/"+w.r1.id, w.r1, map[string]any{"quiet_hours": map[string]any{"start": "22:00", "end": "07:00"}}, 200)
	if q, _ := got["quiet_hours"].(map[string]any); q["start"] != "22:00" || q["end"] != "07:00" {
		t.Fatalf("after setting: %v", got)
	}
	h.call("PATCH", "/v1/users/"+w.r1.id, w.r1, map[string]any{"quiet_hours": map[string]any{"start": "late", "end": "07:00"}}, 422)
	if got := h.call("GET", "/v1/users/"+w.r1.id, w.r1, nil, 200); got["quiet_hours"] == nil {
		t.Fatalf("a refused change cleared them: %v", got)
	}
	got = h.call("PATCH", "/v1/users/"+w.r1.id, w.r1, map[string]any{"quiet_hours": map[string]any{"start": "", "end": ""}}, 200)
	if got["quiet_hours"] != nil {
		t.Fatalf("after clearing: %v", got)
	}
}

func TestDeactivatingAUserForgetsTheirDevices(t *testing.T) {
	w := newWorld(t)
	h := w.h
	h.call("POST", "/v1/devices", w.r1, map[string]any{"device_id": "phone-1", "fcm_token": "token-r1", "platform": "android"}, 200)
	h.call("POST", "/v1/devices", w.r1, map[string]any{"device_id": "tablet", "fcm_token": "token-r1-tab", "platform": "ios"}, 200)
	h.call("PATCH", "/v1/users/"+w.r1.id, w.admin, map[string]any{"active": false}, 200)
	if list, err := h.devices.List(context.Background(), w.admin.tenant, w.r1.id); err != nil || len(list) != 0 {
		t.Fatalf("devices of a deactivated user: %v %v", list, err)
	}
	for _, token := range []string{"token-r1", "token-r1-tab"} {
		if _, err := h.store.TokenOwnerOf(context.Background(), w.admin.tenant, token); err == nil {
			t.Fatalf("%s is still registered", token)
		}
	}
}
