package api_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// simPhone is a minimal WatermelonDB client: local rows with a status and the
// set of locally changed columns, applying pulls the way synchronize() does
// (remote rows under local changes, remote deletes winning) and pushing what
// is local afterwards.
type simPhone struct {
	name   string
	d      *device
	rows   map[string]*simRow // customers only: enough columns to collide
	nextID int
}

type simRow struct {
	cols    map[string]any
	status  string // synced, created, updated, deleted
	changed map[string]bool
}

var simColumns = []string{"title", "industry", "region", "tags"}

func (p *simPhone) sync(t *testing.T, conflicted map[string]bool) {
	t.Helper()
	h := p.d.h
	// Pull, apply under local changes.
	for {
		r := h.do("GET", "/v1/sync/pull?last_pulled_at="+p.d.cursor, p.d.as.access, nil)
		h.expect(r, 200, p.name+" pull")
		var body struct {
			Changes map[string]struct {
				Created, Updated []map[string]any
				Deleted          []string
			}
			Timestamp int64
			HasMore   bool `json:"has_more"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		tc := body.Changes["customers"]
		for _, rec := range append(tc.Created, tc.Updated...) {
			id := rec["id"].(string)
			local := p.rows[id]
			switch {
			case local == nil:
				p.rows[id] = &simRow{cols: rec, status: "synced", changed: map[string]bool{}}
			case local.status == "deleted":
				// stays deleted; the push will tell the server
			default:
				for k, v := range rec {
					if !local.changed[k] {
						local.cols[k] = v
					}
				}
			}
		}
		for _, id := range tc.Deleted {
			delete(p.rows, id)
		}
		p.d.cursor = strconv.FormatInt(body.Timestamp, 10)
		if !body.HasMore {
			break
		}
	}
	// Push everything local.
	push := map[string]any{"created": []any{}, "updated": []any{}, "deleted": []any{}}
	for id, row := range p.rows {
		switch row.status {
		case "created":
			rec := maps.Clone(row.cols)
			rec["id"] = id
			push["created"] = append(push["created"].([]any), rec)
		case "updated":
			changed := slices.Sorted(maps.Keys(row.changed))
			rec := map[string]any{"id": id, "_changed": strings.Join(changed, ",")}
			for _, c := range changed {
				rec[c] = row.cols[c]
			}
			push["updated"] = append(push["updated"].([]any), rec)
		case "deleted":
			push["deleted"] = append(push["deleted"].([]any), id)
		}
	}
	res := p.d.push(map[string]any{"customers": push}, 200)
	rejected := map[string]bool{}
	if ids, ok := res["experimentalRejectedIds"].(map[string]any)["customers"].([]any); ok {
		for _, id := range ids {
			rejected[id.(string)] = true
		}
	}
	if ids, ok := res["conflicted"].(map[string]any)["customers"].([]any); ok {
		for _, id := range ids {
			conflicted[id.(string)] = true
		}
	}
	for id, row := range p.rows {
		if rejected[id] {
			continue
		}
		if row.status == "deleted" {
			delete(p.rows, id)
			continue
		}
		row.status, row.changed = "synced", map[string]bool{}
	}
}

func (p *simPhone) act(rng *rand.Rand) {
	live := []string{}
	for id, row := range p.rows {
		if row.status != "deleted" {
			live = append(live, id)
		}
	}
	slices.Sort(live)
	switch op := rng.IntN(10); {
	case op < 2 || len(live) == 0:
		p.nextID++
		id := fmt.Sprintf("%s%010d", p.name, p.nextID)
		p.rows[id] = &simRow{status: "created", changed: map[string]bool{}, cols: map[string]any{
			"name": "Customer " + id, "title": "t0", "industry": "", "region": "", "tags": `["seed"]`,
		}}
	case op < 9:
		row := p.rows[live[rng.IntN(len(live))]]
		col := simColumns[rng.IntN(len(simColumns))]
		value := any(fmt.Sprintf("%s-%d", p.name, rng.IntN(1000)))
		if col == "tags" {
			value = fmt.Sprintf(`["seed","%s%d"]`, p.name, rng.IntN(3))
		}
		row.cols[col] = value
		if row.status == "synced" {
			row.status = "updated"
		}
		row.changed[col] = true
	default:
		id := live[rng.IntN(len(live))]
		if p.rows[id].status == "created" {
			delete(p.rows, id) // never reached the server
		} else {
			p.rows[id].status = "deleted"
		}
	}
}

// TestRandomOfflineEditsConverge has three phones of one rep make random
// creates, edits and deletes offline and sync in random order. In the end
// every phone holds exactly the server's customers with the server's values,
// and every push the server reported as conflicting left entries in the
// conflicts table. The seed is printed; FIELDCRM_SEED replays a run.
func TestRandomOfflineEditsConverge(t *testing.T) {
	seed := uint64(20261122)
	if s, err := strconv.ParseUint(os.Getenv("FIELDCRM_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := newWorld(t)
	h := w.h
	var phones []*simPhone
	for _, name := range []string{"pa", "pb", "pc"} {
		phones = append(phones, &simPhone{name: name, d: h.device(w.r1, name), rows: map[string]*simRow{}})
	}
	conflicted := map[string]bool{}
	for step := 0; step < 120; step++ {
		p := phones[rng.IntN(len(phones))]
		if rng.IntN(4) == 0 {
			p.sync(t, conflicted)
		} else {
			p.act(rng)
		}
	}
	for range 2 { // settle: everyone pushes, then everyone pulls the result
		for _, p := range phones {
			p.sync(t, conflicted)
		}
	}
	kinds, all, _ := h.pullAll(w.r1, "null")
	server := map[string]map[string]any{}
	for _, id := range kinds["customers/created"] {
		server[id] = all[id]
	}
	for _, p := range phones {
		if len(p.rows) != len(server) {
			t.Errorf("%s holds %d customers, the server %d", p.name, len(p.rows), len(server))
			for id := range server {
				if p.rows[id] == nil {
					t.Logf("missing %s: %v", id, server[id]["name"])
				}
			}
		}
		for id, row := range p.rows {
			srv := server[id]
			if srv == nil {
				t.Errorf("%s holds %s, which the server does not have", p.name, id)
				continue
			}
			for _, c := range append(simColumns, "name") {
				if fmt.Sprint(row.cols[c]) != fmt.Sprint(srv[c]) {
					t.Errorf("%s %s.%s = %v, server %v", p.name, id, c, row.cols[c], srv[c])
				}
			}
		}
	}
	if len(conflicted) == 0 {
		t.Fatal("the random run produced no conflict; change the seed or the steps")
	}
	for id := range conflicted {
		if n := len(h.call("GET", "/v1/conflicts?record_id="+id, w.r1, nil, 200)["data"].([]any)); n == 0 {
			t.Errorf("push reported %s conflicted, the conflicts table has nothing", id)
		}
	}
	t.Logf("%d customers, %d records with conflicts", len(server), len(conflicted))
}
