package api_test

import (
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
