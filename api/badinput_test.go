package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldcrm/fieldcrm/models"
)

// TestBadInputGets4xxAndWritesNothing sends every write route the mistakes
// clients make and checks the status, the problem document and that the
// tenant's users and teams are exactly as before.
func TestBadInputGets4xxAndWritesNothing(t *testing.T) {
	w := newWorld(t)
	h := w.h
	ctx := context.Background()
	snapshot := func() string {
		users, err := h.store.Users(ctx, w.admin.tenant, models.UserFilter{})
		if err != nil {
			t.Fatal(err)
		}
		teams, err := h.store.Teams(ctx, w.admin.tenant, "")
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, u := range users {
			b.WriteString(u.ID + u.Name + u.Email + string(u.Role) + u.TeamID + u.TimeZone + u.Locale + u.PasswordHash)
		}
		for _, tm := range teams {
			b.WriteString(tm.ID + tm.Name + tm.ManagerID)
		}
		return b.String()
	}
	validUser := `{"email":"x@a.test","name":"X","password":"` + testPassword + `","role":"rep","team_id":"` + w.t1 + `"}`
	admin := w.admin
	cases := []badInput{
		{"signup malformed JSON", "POST", "/v1/auth/signup", `{"company_name": "A",`, admin, 400, "", nil},
		{"signup not an object", "POST", "/v1/auth/signup", `["a"]`, admin, 400, "", nil},
		{"signup empty body", "POST", "/v1/auth/signup", ``, admin, 400, "", nil},
		{"signup two objects", "POST", "/v1/auth/signup", `{} {}`, admin, 400, "", nil},
		{"signup wrong type", "POST", "/v1/auth/signup", `{"company_name": 5, "name":"A","email":"a@b.test","password":"` + testPassword + `"}`, admin, 422, "company_name", nil},
		{"signup unknown field", "POST", "/v1/auth/signup", `{"company":"A","name":"A","email":"a@b.test","password":"` + testPassword + `"}`, admin, 422, "company", nil},
		{"signup short password", "POST", "/v1/auth/signup", `{"company_name":"A","name":"A","email":"new@b.test","password":"short"}`, admin, 422, "password", nil},
		{"signup bad email", "POST", "/v1/auth/signup", `{"company_name":"A","name":"A","email":"not-an-email","password":"` + testPassword + `"}`, admin, 422, "email", nil},
		{"signup bad time zone", "POST", "/v1/auth/signup", `{"company_name":"A","name":"A","email":"tz@b.test","password":"` + testPassword + `","time_zone":"Mars/Base"}`, admin, 422, "time_zone", nil},
		{"signup text/plain", "POST", "/v1/auth/signup", `{}`, admin, 415, "", []string{"Content-Type", "text/plain"}},
		{"login missing device", "POST", "/v1/auth/login", `{"email":"admin@a.test","password":"x"}`, admin, 422, "device_id", nil},
		{"login null body", "POST", "/v1/auth/login", `null`, admin, 400, "", nil},
		{"user unknown role", "POST", "/v1/users", strings.Replace(validUser, `"rep"`, `"boss"`, 1), admin, 422, "role", nil},
		{"user role number", "POST", "/v1/users", strings.Replace(validUser, `"rep"`, `7`, 1), admin, 422, "role", nil},
		{"user missing team for rep", "POST", "/v1/users", strings.Replace(validUser, w.t1, ``, 1), admin, 422, "team_id", nil},
		{"user unknown team", "POST", "/v1/users", strings.Replace(validUser, w.t1, `nope`, 1), admin, 422, "team_id", nil},
		{"user taken email", "POST", "/v1/users", strings.Replace(validUser, `x@a.test`, `r1@a.test`, 1), admin, 409, "email", nil},
		{"user other tenant's email", "POST", "/v1/users", strings.Replace(validUser, `x@a.test`, `r@b.test`, 1), admin, 409, "email", nil},
		{"user name too long", "POST", "/v1/users", strings.Replace(validUser, `"X"`, `"`+strings.Repeat("n", 201)+`"`, 1), admin, 422, "name", nil},
		{"user locale garbage", "POST", "/v1/users", strings.Replace(validUser, `"role"`, `"locale":"!!","role"`, 1), admin, 422, "locale", nil},
		{"patch empty", "PATCH", "/v1/users/" + w.r1.id, `{}`, admin, 422, "", nil},
		{"patch active string", "PATCH", "/v1/users/" + w.r1.id, `{"active":"no"}`, admin, 422, "active", nil},
		{"patch unknown field", "PATCH", "/v1/users/" + w.r1.id, `{"email":"new@a.test"}`, admin, 422, "email", nil},
		{"patch bad manager", "PATCH", "/v1/users/" + w.r1.id, `{"manager_id":"` + w.r2.id + `"}`, admin, 422, "manager_id", nil},
		{"patch own manager is self", "PATCH", "/v1/users/" + w.m1.id, `{"manager_id":"` + w.m1.id + `"}`, admin, 422, "manager_id", nil},
		{"patch valid field plus bad one", "PATCH", "/v1/users/" + w.r1.id, `{"name":"Renamed","time_zone":"Nowhere"}`, admin, 422, "time_zone", nil},
		{"team empty name", "POST", "/v1/teams", `{"name":"  "}`, admin, 422, "name", nil},
		{"team manager is rep", "POST", "/v1/teams", `{"name":"West","manager_id":"` + w.r1.id + `"}`, admin, 422, "manager_id", nil},
		{"list bad limit", "GET", "/v1/users?limit=0", ``, admin, 422, "limit", nil},
		{"list huge limit", "GET", "/v1/users?limit=100000", ``, admin, 422, "limit", nil},
		{"list bad active", "GET", "/v1/users?active=maybe", ``, admin, 422, "active", nil},
		{"list bad role", "GET", "/v1/users?role=boss", ``, admin, 422, "role", nil},
		{"unknown route", "GET", "/v1/nothing-here", ``, admin, 404, "", nil},
	}
	runBadInputs(t, h, snapshot, cases)
}

// badInput is one wrong request: who sends it, the status it must get and the
// field the problem document must name ("" for none).
type badInput struct {
	name, method, path, body string
	as                       account
	want                     int
	field                    string
	headers                  []string
}

// runBadInputs sends each case as a subtest and checks its problem document,
// and that snapshot (the stored data the test cares about) did not change.
func runBadInputs(t *testing.T, h *harness, snapshot func() string, cases []badInput) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := h.with(t)
			before := snapshot()
			var body any
			if c.body != "" {
				body = c.body
			}
			r := h.do(c.method, c.path, c.as.access, body, c.headers...)
			h.expect(r, c.want, c.name)
			if c.field != "" && !strings.Contains(string(r.body), `"field":"`+c.field+`"`) {
				t.Fatalf("no error for field %q: %s", c.field, r.body)
			}
			if after := snapshot(); after != before {
				t.Fatal("the request changed stored data")
			}
		})
	}
}

func TestOversizedBodyGets413Problem(t *testing.T) {
	h := newHarness(t)
	h.expect(h.announce("POST", "/v1/auth/signup", "", "application/json", 16<<20), 413, "oversized body")
}

// announce sends a request's headers with a Content-Length of length and only
// the first byte of the body, through a real listener (Fiber's in-memory test
// client cannot send a body over the limit), and returns the answer: the
// server must refuse an oversized body from the Content-Length alone, before
// reading (or buffering) it.
func (h *harness) announce(method, path, token, contentType string, length int) response {
	h.t.Helper()
	if h.listening == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			h.t.Fatal(err)
		}
		go func() { _ = h.server.App().Listener(ln) }()
		h.t.Cleanup(func() { _ = h.server.App().Shutdown() })
		h.listening = ln.Addr().String()
	}
	conn, err := net.Dial("tcp", h.listening)
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Close()
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: %s\r\nContent-Length: %d\r\n\r\n{", method, path, auth, contentType, length)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: raw}
}
