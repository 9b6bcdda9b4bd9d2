package api_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A user created without a time zone or locale follows the tenant's: a rep
// of a zh-CN, Asia/Shanghai tenant gets Chinese reminders in Shanghai time,
// and keeps following the tenant when its default changes.
func TestUsersWithoutTheirOwnTimeZoneAndLocaleFollowTheTenants(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/auth/signup", "", map[string]any{"company_name": "上海远景贸易", "name": "王伟", "email": "admin@tz.test",
		"password": testPassword, "time_zone": "Asia/Shanghai", "locale": "zh-cn"})
	h.expect(r, 201, "signup")
	admin := account{access: r.json(t)["access_token"].(string)}
	settings := h.call("GET", "/v1/settings", admin, nil, 200)
	if settings["time_zone"] != "Asia/Shanghai" || settings["locale"] != "zh-CN" {
		t.Fatalf("tenant settings after a zh-CN, Asia/Shanghai signup: time_zone %v, locale %v", settings["time_zone"], settings["locale"])
	}
	team := h.createTeam(admin, "华东", "")
	rep := h.createUser(admin, "rep@tz.test", "rep", team)
	own := h.call("GET", "/v1/users/"+rep.id, admin, nil, 200)
	if own["time_zone"] != "" || own["locale"] != "" {
		t.Fatalf("a rep created with no time zone or locale stored %v, %v; want none (the tenant's)", own["time_zone"], own["locale"])
	}

	reminderText := func(title string, due time.Time) string {
		t.Helper()
		c := h.newCustomer(rep, map[string]any{"name": "李雷 " + title})["id"].(string)
		h.call("POST", "/v1/tasks", rep, map[string]any{"customer_id": c, "title": title, "due_at": due.Format(time.RFC3339)}, 201)
		h.clock.Set(due)
		if _, err := h.worker.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		// A day later, the tokens have expired: sign in again.
		rep = account{id: rep.id, email: rep.email, access: h.login(rep.email, testPassword).access}
		for _, n := range h.call("GET", "/v1/notifications", rep, nil, 200)["data"].([]any) {
			n := n.(map[string]any)
			if strings.Contains(n["body"].(string), title) {
				return n["title"].(string) + " / " + n["body"].(string)
			}
		}
		t.Fatalf("no reminder of %q in the rep's inbox", title)
		return ""
	}
	due := h.clock.Now().Add(24 * time.Hour).UTC().Truncate(time.Minute)
	got := reminderText("回访", due)
	if want := "跟进到期 / 回访 现在到期（" + due.In(time.FixedZone("CST", 8*3600)).Format("01-02 15:04") + "）"; got != want {
		t.Fatalf("the rep's reminder: %q; want %q", got, want)
	}

	// The tenant moves to English and Tokyo time: the rep, who never chose,
	// moves with it.
	admin = h.login("admin@tz.test", testPassword)
	h.call("PATCH", "/v1/settings", admin, map[string]any{"time_zone": "Asia/Tokyo", "locale": "en"}, 200)
	due = due.Add(24 * time.Hour)
	got = reminderText("Call back", due)
	if want := "Follow-up due / Call back is due now (" + due.In(time.FixedZone("JST", 9*3600)).Format("01-02 15:04") + ")"; got != want {
		t.Fatalf("after the tenant's change: %q; want %q", got, want)
	}

	// A rep who chooses keeps the choice; "" gives it back to the tenant.
	admin = h.login("admin@tz.test", testPassword)
	h.call("PATCH", "/v1/users/"+rep.id, admin, map[string]any{"time_zone": "Europe/Paris", "locale": "zh-CN"}, 200)
	due = due.Add(24 * time.Hour)
	if got, want := reminderText("再次回访", due), "跟进到期 / 再次回访 现在到期（"+due.In(mustZone(t, "Europe/Paris")).Format("01-02 15:04")+"）"; got != want {
		t.Fatalf("after the rep chose: %q; want %q", got, want)
	}
	admin = h.login("admin@tz.test", testPassword)
	h.call("PATCH", "/v1/users/"+rep.id, admin, map[string]any{"time_zone": "", "locale": ""}, 200)
	due = due.Add(24 * time.Hour)
	if got, want := reminderText("Visit", due), "Follow-up due / Visit is due now ("+due.In(time.FixedZone("JST", 9*3600)).Format("01-02 15:04")+")"; got != want {
		t.Fatalf("after giving the choice back: %q; want %q", got, want)
	}
	admin = h.login("admin@tz.test", testPassword)
	h.call("PATCH", "/v1/users/"+rep.id, admin, map[string]any{"time_zone": "Mars/Olympus"}, 422)
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
