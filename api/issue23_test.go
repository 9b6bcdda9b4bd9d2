package api_test

import (
	"context"
	"strings"
	"testing"
)

// TestInvalidUTF8InQueryIsRefusedOnEveryListRoute sends a q (and other query
// parameters) holding bytes that are not UTF-8 to every list that searches: the
// answer is a 400 problem naming the parameter, never a 500 from the regexp engine.
func TestInvalidUTF8InQueryIsRefusedOnEveryListRoute(t *testing.T) {
	w := newWorld(t)
	h := w.h
	cust := h.newCustomer(w.r1, map[string]any{"name": "Acme"})["id"].(string)
	paths := []string{
		"/v1/customers?q=%ff%fe",
		"/v1/contacts?q=%ff%fe",
		"/v1/interactions?q=%ff%fe",
		"/v1/customers/" + cust + "/contacts?q=%ff%fe",
		"/v1/customers/" + cust + "/interactions?q=%ff%fe",
		"/v1/contacts?q=ab%c3",
		"/v1/exports/customers?q=%ff",
		"/v1/tasks?status=%ff",
		"/v1/users?role=%ff",
	}
	for _, p := range paths {
		for _, as := range []account{w.r1, w.admin} {
			r := h.do("GET", p, as.access, nil)
			h.expect(r, 400, "GET "+p)
			if !strings.Contains(string(r.body), "UTF-8") {
				t.Errorf("GET %s: the problem does not say what is wrong: %s", p, r.body)
			}
		}
	}
}

// TestDeviceTokenRegisteredInAnotherTenantLeavesTheFirstAlone registers, in
// tenant B, the FCM token a device of tenant A holds: A's device keeps it (B
// cannot silence A's reminders), B's user gets their own registration, and
// moving the token inside one tenant still takes it from the colleague there
// and from nobody else.
func TestDeviceTokenRegisteredInAnotherTenantLeavesTheFirstAlone(t *testing.T) {
	w := newWorld(t)
	h := w.h
	ctx := context.Background()
	h.call("POST", "/v1/devices", w.r1, map[string]any{"device_id": "phone-a", "fcm_token": "shared-token", "platform": "android"}, 200)
	h.call("POST", "/v1/devices", w.repB, map[string]any{"device_id": "phone-b", "fcm_token": "shared-token", "platform": "android"}, 200)
	if list := h.devicesOf(w.r1); len(list) != 1 || list[0].(map[string]any)["fcm_token"] != "shared-token" {
		t.Fatalf("tenant A's device after tenant B registered its token: %v", list)
	}
	if list := h.devicesOf(w.repB); len(list) != 1 {
		t.Fatalf("tenant B's device: %v", list)
	}
	ownerA, errA := h.store.TokenOwnerOf(ctx, w.admin.tenant, "shared-token")
	ownerB, errB := h.store.TokenOwnerOf(ctx, w.adminB.tenant, "shared-token")
	if errA != nil || errB != nil || ownerA.UserID != w.r1.id || ownerB.UserID != w.repB.id {
		t.Fatalf("token owners: A %+v %v, B %+v %v", ownerA, errA, ownerB, errB)
	}
	// Within tenant A the newest registration wins; B's stays.
	h.call("POST", "/v1/devices", w.r1b, map[string]any{"device_id": "phone-a2", "fcm_token": "shared-token", "platform": "android"}, 200)
	if list := h.devicesOf(w.r1); len(list) != 0 {
		t.Fatalf("the colleague in tenant A kept the moved token: %v", list)
	}
	if list := h.devicesOf(w.repB); len(list) != 1 {
		t.Fatalf("tenant B lost its device when the token moved inside tenant A: %v", list)
	}
	// Tenant B's user removing their device leaves tenant A's registration.
	h.call("DELETE", "/v1/devices/phone-b", w.repB, nil, 204)
	if list := h.devicesOf(w.r1b); len(list) != 1 {
		t.Fatalf("tenant A lost its device when tenant B removed its own: %v", list)
	}
	if o, err := h.store.TokenOwnerOf(ctx, w.admin.tenant, "shared-token"); err != nil || o.UserID != w.r1b.id {
		t.Fatalf("tenant A's token owner after B's removal: %+v %v", o, err)
	}
}
