package api_test

import (
	"encoding/json"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

// fuzzTenant is one tenant, its admin and a device of the admin's, built for
// the first input a fuzz worker runs and reused by the rest: a new database
// per input would cost far more than the request under test.
type fuzzTenant struct {
	base     *harness
	admin    account
	phone    device
	customer string // a customer for updates and records to name
	fresh    int
}

func newFuzzTenant(f *testing.F) func(t *testing.T) (*harness, *fuzzTenant) {
	base := buildHarness(f, env.Store(f), env.Redis(f), testenv.NewClock(time.Now().UTC()), defaultHarnessConfig())
	var ft *fuzzTenant
	return func(t *testing.T) (*harness, *fuzzTenant) {
		h := base.with(t)
		if ft == nil {
			admin := h.signup("Fuzz", "admin@fuzz.test")
			ft = &fuzzTenant{base: base, admin: admin, phone: *h.device(admin, "fuzz-phone"),
				customer: h.newCustomer(admin, map[string]any{"name": "Stays"})["id"].(string)}
		}
		ft.phone.h = h
		return h, ft
	}
}

// nextID is an id no record of the tenant has yet.
func (ft *fuzzTenant) nextID(prefix string) string {
	ft.fresh++
	return prefix + strconv.Itoa(ft.fresh) + "x" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// exists reports whether a record of table (customers, interactions) has id.
func (ft *fuzzTenant) exists(h *harness, table, id string) bool {
	h.t.Helper()
	r := h.do("GET", "/v1/"+table+"/"+url.PathEscape(id), ft.admin.access, nil)
	if r.status >= 500 {
		h.t.Fatalf("GET %s %q: %d %s", table, id, r.status, r.body)
	}
	return r.status == 200
}

// fingerprint is what any write of the tenant changes: the number of
// customers and the version of the one that stays.
func (ft *fuzzTenant) fingerprint(h *harness) string {
	h.t.Helper()
	total := h.call("GET", "/v1/reports/customers", ft.admin, nil, 200)["total"]
	version := h.call("GET", "/v1/customers/"+ft.customer, ft.admin, nil, 200)["version"]
	return strconv.Quote(jsonString(total) + "/" + jsonString(version))
}

var fuzzTables = []string{"customers", "interactions"}

// FuzzPush sends a push of one valid new customer and one row made from the
// fuzzer's values (any table, column, value of any JSON type, _changed, id,
// created, updated or deleted). Whatever the row: the answer is 200 or 4xx,
// never 5xx; after a 4xx nothing of the push is stored; in a 200 the valid
// customer is accepted (a row refused is refused alone), every accepted new
// record is stored and every rejected one is not.
func FuzzPush(f *testing.F) {
	f.Add(uint8(0), uint8(0), "name", "张伟", 0.0, uint8(0), "", "")
	f.Add(uint8(0), uint8(0), "phones", `[{"number":"0 0000 0000"}]`, 0.0, uint8(0), "", "")
	f.Add(uint8(0), uint8(1), "credit_limit", "", 0.0, uint8(3), "credit_limit", "")
	f.Add(uint8(0), uint8(0), "name", "", 5.0, uint8(1), "", "")
	f.Add(uint8(0), uint8(0), "phones", "[{", 0.0, uint8(0), "", "")
	f.Add(uint8(0), uint8(2), "", "", 0.0, uint8(0), "", "has space")
	f.Add(uint8(0), uint8(1), "name", "N", 0.0, uint8(0), "name,nickname", "")
	f.Add(uint8(1), uint8(0), "occurred_at", "", 1e300, uint8(1), "", "")
	f.Add(uint8(1), uint8(0), "customer_id", "nobody", 0.0, uint8(0), "", "")
	f.Add(uint8(0), uint8(0), "tags", `{"a":1}`, 0.0, uint8(4), "", "")
	f.Add(uint8(0), uint8(0), "name", "", 0.0, uint8(5), "", "")
	tenant := newFuzzTenant(f)
	f.Fuzz(func(t *testing.T, table, kind uint8, field, value string, num float64, typ uint8, changed, id string) {
		h, ft := tenant(t)
		tbl := fuzzTables[int(table)%len(fuzzTables)]
		good := ft.nextID("good")
		fuzzedID := id != ""
		if !fuzzedID {
			id = ft.nextID("row")
		}
		row := map[string]any{"id": id, "name": "Fuzz"}
		if tbl == "interactions" {
			row = map[string]any{"id": id, "customer_id": ft.customer, "channel": "visit",
				"occurred_at": float64(time.Now().UnixMilli()), "summary": "fuzz"}
		}
		switch typ % 6 {
		case 0:
			row[field] = value
		case 1:
			if math.IsNaN(num) || math.IsInf(num, 0) {
				return // JSON has no such number
			}
			row[field] = num
		case 2:
			row[field] = num > 0
		case 3:
			row[field] = nil
		case 4:
			var v any
			if json.Unmarshal([]byte(value), &v) != nil {
				return
			}
			row[field] = v
		case 5:
			delete(row, field)
		}
		if changed != "" {
			row["_changed"] = changed
		}
		changes := map[string]map[string][]any{
			"customers": {"created": {map[string]any{"id": good, "name": "Valid " + good}}},
		}
		tc := changes[tbl]
		if tc == nil {
			tc = map[string][]any{}
			changes[tbl] = tc
		}
		created := false
		switch kind % 3 {
		case 0:
			tc["created"] = append(tc["created"], row)
			created = true
		case 1:
			if !fuzzedID && tbl == "customers" {
				row["id"] = ft.customer
			}
			row["_status"] = "updated"
			tc["updated"] = append(tc["updated"], row)
		case 2:
			tc["deleted"] = append(tc["deleted"], id)
		}
		body, err := json.Marshal(map[string]any{"changes": changes})
		if err != nil {
			return
		}
		rowID, _ := row["id"].(string)
		existed := created && ft.exists(h, tbl, rowID)
		before := ft.fingerprint(h)
		r := h.do("POST", "/v1/sync/push?last_pulled_at="+ft.phone.cursor, ft.phone.as.access, body)
		switch {
		case r.status >= 500 || r.status < 200 || (r.status >= 300 && r.status < 400) || (r.status > 200 && r.status < 300):
			t.Fatalf("push %s: status %d %s", body, r.status, r.body)
		case r.status >= 400:
			if after := ft.fingerprint(h); after != before {
				t.Fatalf("push %s refused with %d %s, but the tenant changed: %s → %s", body, r.status, r.body, before, after)
			}
			if ft.exists(h, "customers", good) || (created && !existed && ft.exists(h, tbl, rowID)) {
				t.Fatalf("push %s refused with %d %s, but stored part of it", body, r.status, r.body)
			}
			return
		}
		var res struct {
			Accepted map[string][]string `json:"accepted"`
			Rejected map[string][]struct {
				ID     string `json:"id"`
				Reason string `json:"reason"`
			} `json:"rejected"`
		}
		if err := json.Unmarshal(r.body, &res); err != nil {
			t.Fatalf("push %s: answer %s: %v", body, r.body, err)
		}
		if rowID != good && !slices.Contains(res.Accepted["customers"], good) {
			t.Fatalf("push %s: the valid customer was not accepted alone: %s", body, r.body)
		}
		for tname, accepted := range res.Accepted {
			for _, aid := range accepted {
				if (aid == good || (created && aid == rowID)) && !ft.exists(h, tname, aid) {
					t.Fatalf("push %s: %s %s accepted but not stored: %s", body, tname, aid, r.body)
				}
			}
		}
		for tname, rejected := range res.Rejected {
			for _, rj := range rejected {
				if created && rj.ID == rowID && !existed && ft.exists(h, tname, rj.ID) {
					t.Fatalf("push %s: %s %s rejected (%s) but stored", body, tname, rj.ID, rj.Reason)
				}
			}
		}
	})
}

// FuzzWriteRoutes sends any body to every JSON write route of the API (from
// its OpenAPI document), as the tenant's admin. The answer is never a 5xx,
// and after a 4xx the tenant is as it was.
func FuzzWriteRoutes(f *testing.F) {
	for _, s := range []string{
		`{"name":"A","phones":[{"number":"0 0000 0000"}]}`, `{"name":"B","birthday":"2026-02-30"}`, `null`, `[]`, `{"name":1}`,
		`{"name":"C"} {}`, `{"customer_id":"x","channel":"visit"}`, `{"nope":1}`, `{"name":"\ud800"}`, `{"due_at":"yesterday"}`, ``,
	} {
		for i := range 8 {
			f.Add(uint8(i), s)
		}
	}
	tenant := newFuzzTenant(f)
	var routes []string
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		h, ft := tenant(t)
		if routes == nil {
			routes = writeRoutes(h, ft)
		}
		mp := strings.SplitN(routes[int(route)%len(routes)], " ", 2)
		before := ft.fingerprint(h)
		r := h.do(mp[0], mp[1], ft.admin.access, body)
		if r.status >= 500 {
			t.Fatalf("%s %s: status %d %s", mp[0], mp[1], r.status, r.body)
		}
		if r.status >= 400 {
			if after := ft.fingerprint(h); after != before {
				t.Fatalf("%s %s %s refused with %d %s, but the tenant changed: %s → %s", mp[0], mp[1], body, r.status, r.body, before, after)
			}
		}
	})
}

// writeRoutes lists "METHOD path" of every route that takes a JSON body,
// with the tenant's customer as every path id. Sign-in routes, the push
// (FuzzPush) and imports (multipart) are left out; so are the ones that would
// leave the tenant unusable for the next inputs (erasure, logout).
func writeRoutes(h *harness, ft *fuzzTenant) []string {
	h.t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody *struct {
				Content map[string]any `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(h.do("GET", "/v1/openapi.json", "", nil).body, &doc); err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for path, ops := range doc.Paths {
		if strings.HasPrefix(path, "/v1/auth/") || strings.HasPrefix(path, "/v1/sync/push") ||
			strings.HasPrefix(path, "/v1/imports") || strings.HasSuffix(path, "/erase") {
			continue
		}
		for method, op := range ops {
			if op.RequestBody == nil || op.RequestBody.Content["application/json"] == nil {
				continue
			}
			p := path
			for {
				i := strings.Index(p, "{")
				if i < 0 {
					break
				}
				j := strings.Index(p[i:], "}")
				p = p[:i] + ft.customer + p[i+j+1:]
			}
			out = append(out, strings.ToUpper(method)+" "+p)
		}
	}
	slices.Sort(out)
	if len(out) < 5 {
		h.t.Fatalf("the OpenAPI document lists only %v as JSON write routes", out)
	}
	return out
}
