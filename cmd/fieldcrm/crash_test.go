package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

var (
	crashSeed   = flag.Uint64("crash-seed", 0, "seed of TestDefaultDeploymentSurvivesKillsDuringEveryKindOfWrite (0: from the clock)")
	crashRounds = flag.Int("crash-rounds", 6, "rounds of TestDefaultDeploymentSurvivesKillsDuringEveryKindOfWrite")
)

// TestDefaultDeploymentSurvivesKillsDuringEveryKindOfWrite runs the default
// deployment (embedded FerretDB on SQLite, in-process Redis that keeps
// nothing) as a process of its own and, several rounds, kill -9s it while,
// at once, a phone pushes customers and loyalty points, a customers CSV is
// being imported, duplicate customers are being merged and a burst of
// reminders falls due. After each restart it checks what docs/durability.md
// promises:
//   - the phone's cursor is still valid (no 410 or 422), its next pull is
//     complete, and its push in flight, retried, is accepted; every
//     acknowledged write is there once, customer numbers are unique;
//   - every customer's loyalty balance is the sum of its ledger entries as
//     soon as the server is up again, before the push in flight is retried
//     (start-up settles what the kill left; internal/crm/loyalty.go);
//   - the import reads interrupted (or done); importing the same file again
//     completes it, each of its customers there once;
//   - a merge cut off is finished by running it again, and running it again
//     changes nothing: every child record of the merged customers is on the
//     survivor once, the others are tombstones naming it;
//   - every reminder due reaches every device; a device gets one twice only
//     when the kill fell between the push and its record (notify.Worker's
//     deliver), then under the same collapse key, so the phone shows it once.
//
// Seeded: a failure prints the seed; rerun it with
// go test ./cmd/fieldcrm -run TestDefaultDeploymentSurvivesKills -args -crash-seed=N
// (the kill lands at the same moment of the schedule, not at the same
// instruction).
func TestDefaultDeploymentSurvivesKillsDuringEveryKindOfWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server several times")
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun: -args -crash-seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 23))

	fcm := newCrashFCM()
	t.Cleanup(fcm.srv.Close)
	env := append(defaultDeploymentEnv(), "FCM_PROJECT_ID=crash", "FCM_ENDPOINT="+fcm.srv.URL, "FIELDCRM_LOG_LEVEL=warn")
	r := &replica{name: "crash", dataDir: t.TempDir()}
	r.start(t, env)
	t.Cleanup(func() { r.kill(t) })
	email := "crash@default.test"
	admin := signup(t, r, "Crash Ltd", email)["access_token"].(string)
	tokens := []string{"fcm-crash-a", "fcm-crash-b"}
	for i, tok := range tokens {
		r.must(t, 200, "POST", "/v1/devices", admin, map[string]any{"device_id": fmt.Sprintf("crash-device-%d", i), "fcm_token": tok, "platform": "android", "locale": "en"})
	}
	phone := newHandset(t, r, email, "crash-phone")
	phone.pull(t, r)

	w := &crashWorld{
		acked:   map[string]map[string]bool{"customers": {}, "loyalty_entries": {}},
		points:  map[string]int{},
		imports: map[string]int{},
		reminds: map[string]bool{},
		kids:    map[string][]string{},
		pushed:  map[[2]string]int{},
	}
	w.devices = []*handset{phone}
	for round := range *crashRounds {
		crashRound(t, r, env, rng, round, email, admin, phone, tokens, fcm, w)
	}
}

// crashWorld is what the test knows was acknowledged, across rounds.
type crashWorld struct {
	acked   map[string]map[string]bool // table → ids the phone's pushes got accepted
	points  map[string]int             // customer → points of its accepted entries
	imports map[string]int             // customer name prefix of an import → its rows
	reminds map[string]bool            // task ids due
	kids    map[string][]string        // merge survivor → ids of every child it must hold
	pushed  map[[2]string]int          // (task, token) → pushes by the end of the last round
	devices []*handset                 // every device that syncs, the phone first
}

func crashRound(t *testing.T, r *replica, env []string, rng *rand.Rand, round int, email, admin string, phone *handset, tokens []string, fcm *crashFCM, w *crashWorld) {
	t.Helper()
	// Before the round: the merges' customers and their records, the
	// import's file, the reminders' tasks.
	type mergeGroup struct {
		survivor string
		from     []string
	}
	var groups []mergeGroup
	for g := range 4 {
		mg := mergeGroup{survivor: crashCustomer(t, r, admin, fmt.Sprintf("Merge r%d g%d keep", round, g))}
		kids := []string{crashChild(t, r, admin, "loyalty_entries", mg.survivor, 50)}
		for f := range 2 {
			from := crashCustomer(t, r, admin, fmt.Sprintf("Merge r%d g%d from %d", round, g, f))
			mg.from = append(mg.from, from)
			for range 2 + rng.IntN(2) {
				kids = append(kids, crashChild(t, r, admin, "interactions", from, 0))
			}
			kids = append(kids, crashChild(t, r, admin, "loyalty_entries", from, 10+rng.IntN(90)))
		}
		w.kids[mg.survivor] = kids
		groups = append(groups, mg)
	}
	importRows := 150 + rng.IntN(150)
	prefix := fmt.Sprintf("Imported r%d ", round)
	w.imports[prefix] = importRows
	var csv strings.Builder
	csv.WriteString("客户编号,客户名称,类型\r\n")
	for i := range importRows {
		fmt.Fprintf(&csv, "OLD-R%d-%04d,%s%04d,公司\r\n", round, i, prefix, i)
	}
	file := []byte(csv.String())
	taskCustomer := crashCustomer(t, r, admin, fmt.Sprintf("Reminders r%d", round))

	// The round: everything at once, and the kill at a seeded moment.
	start := time.Now()
	roundTasks := map[string]bool{}
	for i := range 6 + rng.IntN(6) {
		due := start.Add(time.Duration(300+rng.IntN(2700)) * time.Millisecond)
		task := r.must(t, 201, "POST", "/v1/tasks", admin, map[string]any{"customer_id": taskCustomer,
			"title": fmt.Sprintf("Call back %d", i), "due_at": due.UTC().Format(time.RFC3339Nano)})["id"].(string)
		w.reminds[task] = true
		roundTasks[task] = true
	}
	killAfter := time.Duration(400+rng.IntN(1200)) * time.Millisecond
	pushSeed := rng.Uint64()

	var mu sync.Mutex
	var inFlight map[string][]map[string]any
	pushed := 0
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // the phone
		defer wg.Done()
		prng := rand.New(rand.NewPCG(pushSeed, uint64(round)))
		for batch := 0; batch < 10000; batch++ {
			changes := map[string][]map[string]any{}
			for k := range 3 {
				id := fmt.Sprintf("cr%d-%04d-%d", round, batch, k)
				changes["customers"] = append(changes["customers"], newCustomerRow(id))
				changes["loyalty_entries"] = append(changes["loyalty_entries"],
					crashPointsRow(fmt.Sprintf("pe-%d-%04d-%d", round, batch, k), id, "earn", 20+prng.IntN(80)))
			}
			mu.Lock()
			owned := slices.Sorted(mapKeys(w.points))
			mu.Unlock()
			for k := 0; k < 2 && len(owned) > 0; k++ {
				c := owned[prng.IntN(len(owned))]
				mu.Lock()
				have := w.points[c]
				mu.Unlock()
				if have > 10 && !slices.ContainsFunc(changes["loyalty_entries"], func(e map[string]any) bool { return e["customer_id"] == c }) {
					changes["loyalty_entries"] = append(changes["loyalty_entries"],
						crashPointsRow(fmt.Sprintf("pr-%d-%04d-%d", round, batch, k), c, "redeem", 1+prng.IntN(have/2)))
				}
			}
			status, accepted, _ := phone.push(t, r, changes)
			mu.Lock()
			if status != 200 {
				inFlight = changes
				mu.Unlock()
				return
			}
			w.accept(changes, accepted)
			pushed++
			mu.Unlock()
		}
	}()
	importID := ""
	go func() { // the import
		defer wg.Done()
		status, m := crashUpload(r, admin, "customers.csv", file)
		if status == 202 {
			mu.Lock()
			importID = m["id"].(string)
			mu.Unlock()
		}
	}()
	merged, begun := 0, 0
	mergesAt := killAfter - time.Duration(rng.IntN(400))*time.Millisecond
	go func() { // the merges, one after another, from shortly before the kill
		defer wg.Done()
		time.Sleep(time.Until(start.Add(mergesAt)))
		for _, g := range groups {
			mu.Lock()
			begun++
			mu.Unlock()
			if status, _ := r.call(t, "POST", "/v1/customers/"+g.survivor+"/merge", admin, map[string]any{"from": g.from}); status != 200 {
				return
			}
			mu.Lock()
			merged++
			mu.Unlock()
		}
	}()
	for time.Since(start) < killAfter {
		time.Sleep(5 * time.Millisecond)
	}
	r.kill(t)
	killedAt := time.Now()
	wg.Wait()
	pushesBefore := 0
	for k := range fcm.byFiring() {
		if roundTasks[k[0]] {
			pushesBefore++
		}
	}
	t.Logf("round %d: killed %v in: %d pushes acknowledged, one in flight: %v; %d of %d merges begun, %d done; %d of %d reminders pushed",
		round, killAfter, pushed, inFlight != nil, begun, len(groups), merged, pushesBefore, len(roundTasks)*len(tokens))
	r.start(t, env)

	// Before the phone retries: start-up settled what the kill left, so
	// every balance is its ledger's sum and no points are held.
	before := newHandset(t, r, email, fmt.Sprintf("crash-before-%d", round))
	before.pull(t, r)
	merging := map[string]bool{}
	for _, g := range groups[merged:] {
		// A merge cut off moved some entries and not the balances yet: they
		// are right again when it is run again, below.
		merging[g.survivor] = true
		for _, from := range g.from {
			merging[from] = true
		}
	}
	checkBalancesSettled(t, round, before, merging)

	// The phone's cursor is still good; its push in flight, retried, is
	// accepted whole.
	phone.pull(t, r)
	if inFlight != nil {
		status, accepted, m := phone.push(t, r, inFlight)
		if status != 200 {
			t.Fatalf("round %d: retried push: %d %v", round, status, m)
		}
		for table, rows := range inFlight {
			if len(accepted[table]) != len(rows) {
				t.Fatalf("round %d: retried push accepted %d of %d %s: %v", round, len(accepted[table]), len(rows), table, m)
			}
		}
		w.accept(inFlight, accepted)
		phone.pull(t, r)
	}

	// The import: interrupted, or done if it finished; the same file again
	// completes it.
	if importID == "" {
		// The kill came before the upload was answered: the user uploads
		// the file again.
		importID = crashImport(t, r, admin, file)
	} else {
		im := r.must(t, 200, "GET", "/v1/imports/"+importID, admin, nil)
		t.Logf("round %d: the import reads %v after %v of %v rows", round, im["state"], im["done"], im["total"])
		if im["state"] != "interrupted" && im["state"] != "done" {
			t.Fatalf("round %d: import after the restart: %v", round, im)
		}
		if im["state"] == "interrupted" {
			again := r.must(t, 200, "GET", "/v1/imports/"+crashImport(t, r, admin, file), admin, nil)
			if n := again["created"].(float64) + again["skipped"].(float64); int(n) != importRows || again["failed"].(float64) != 0 {
				t.Fatalf("round %d: import again: %v", round, again)
			}
		}
	}

	// The merges: each runs again to completion, and once more changes nothing.
	for _, g := range groups {
		first := r.must(t, 200, "POST", "/v1/customers/"+g.survivor+"/merge", admin, map[string]any{"from": g.from})
		second := r.must(t, 200, "POST", "/v1/customers/"+g.survivor+"/merge", admin, map[string]any{"from": g.from})
		for _, m := range []map[string]any{first, second} {
			delete(m, "updated_at") // the only field a merge of nothing more may touch
		}
		if a, b := fmt.Sprint(first), fmt.Sprint(second); a != b {
			t.Errorf("round %d: merging %s again changed it:\n%s\n%s", round, g.survivor, a, b)
		}
		for _, from := range g.from {
			old := r.must(t, 200, "GET", "/v1/customers/"+from, admin, nil)
			if old["merged_into"] != g.survivor || old["deleted_at"] == nil {
				t.Errorf("round %d: merged-away customer %s: %v", round, from, old)
			}
		}
	}

	// Every reminder due reaches every device; the pushes of one firing to
	// one device beyond the first are what the kill cut off before its
	// record, under one collapse key.
	waitForReminders(t, round, r, admin, fcm, w.reminds, roundTasks, killedAt, tokens, w.pushed)

	// Everything together, as a new device sees it; and every device from
	// the rounds before, the phone among them, pulls on with its cursor and
	// holds the same.
	fresh := newHandset(t, r, email, fmt.Sprintf("crash-check-%d", round))
	fresh.pull(t, r)
	checkCrashWorld(t, round, fresh, w)
	for i, d := range w.devices {
		d.pull(t, r)
		if diff := fresh.diff(d); diff != "" {
			// Something may have changed since the fresh pull: once more.
			fresh.pull(t, r)
			d.pull(t, r)
			if diff := fresh.diff(d); diff != "" {
				t.Fatalf("round %d: device %d's pulls after the restart are incomplete: %s", round, i, diff)
			}
		}
	}
	w.devices = append(w.devices, fresh)
}

// accept notes the rows of a push the server accepted.
func (w *crashWorld) accept(changes map[string][]map[string]any, accepted map[string][]string) {
	for table, rows := range changes {
		for _, row := range rows {
			id := row["id"].(string)
			if !slices.Contains(accepted[table], id) || w.acked[table][id] {
				continue
			}
			w.acked[table][id] = true
			if table == "loyalty_entries" {
				p := int(row["points"].(int))
				if row["kind"] == "redeem" {
					p = -p
				}
				w.points[row["customer_id"].(string)] += p
			}
		}
	}
}

// checkBalancesSettled checks internal/crm/loyalty.go's promise after a
// crash, once the server is up again and before any device retries: each
// customer's balance is the sum of its stored entries (start-up settled the
// customers whose entries the kill left unsettled), and no points are held
// (the process that held them is gone). The customers of a merge cut off
// are left out: it is run again before their balances count.
func checkBalancesSettled(t *testing.T, round int, h *handset, merging map[string]bool) {
	t.Helper()
	sums := map[string]int{}
	for _, e := range h.local["loyalty_entries"] {
		sums[e["customer_id"].(string)] += entryPoints(e)
	}
	for id, c := range h.local["customers"] {
		if merging[id] {
			continue
		}
		l := loyaltyOf(t, id, c)
		if l.Balance != sums[id] {
			t.Errorf("round %d, after the restart, before the retry: customer %s: balance %d, ledger sum %d", round, id, l.Balance, sums[id])
		}
		if len(l.Held) > 0 {
			t.Errorf("round %d, after the restart, before the retry: customer %s still holds %v", round, id, l.Held)
		}
	}
}

// crashLoyalty is a customer's loyalty column.
type crashLoyalty struct {
	Balance int `json:"balance"`
	Held    []struct {
		EntryID string `json:"entry_id"`
		Points  int    `json:"points"`
	} `json:"held"`
}

func (l crashLoyalty) held() int {
	n := 0
	for _, h := range l.Held {
		n += h.Points
	}
	return n
}

// loyaltyOf decodes a synced customer's loyalty: nested values reach
// devices JSON-encoded.
func loyaltyOf(t *testing.T, id string, c map[string]any) crashLoyalty {
	t.Helper()
	var l crashLoyalty
	if raw, _ := c["loyalty"].(string); raw != "" {
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("customer %s: loyalty %q: %v", id, raw, err)
		}
	}
	return l
}

// entryPoints is what a synced ledger entry adds to the balance.
func entryPoints(e map[string]any) int {
	p := int(e["points"].(float64))
	if e["kind"] == "redeem" || e["kind"] == "expire" {
		p = -p
	}
	return p
}

// checkCrashWorld checks, on a full pull, every invariant that holds across
// rounds.
func checkCrashWorld(t *testing.T, round int, fresh *handset, w *crashWorld) {
	t.Helper()
	customers, entries := fresh.local["customers"], fresh.local["loyalty_entries"]
	for table, ids := range w.acked {
		for id := range ids {
			if fresh.local[table][id] == nil {
				t.Fatalf("round %d: acknowledged %s %s is missing", round, table, id)
			}
		}
	}
	// Numbers unique; imported customers each once.
	numbers := map[string]string{}
	refs := map[string]string{}
	imported := map[string]int{}
	for id, c := range customers {
		n, _ := c["number"].(string)
		if n == "" {
			t.Fatalf("round %d: customer %s has no number", round, id)
		}
		if other, taken := numbers[n]; taken {
			t.Fatalf("round %d: customers %s and %s share the number %s", round, id, other, n)
		}
		numbers[n] = id
		name, _ := c["name"].(string)
		for prefix := range w.imports {
			if strings.HasPrefix(name, prefix) {
				imported[prefix]++
				ref, _ := c["external_ref"].(string)
				if other, taken := refs[ref]; taken {
					t.Fatalf("round %d: imported row %s twice: customers %s and %s", round, ref, id, other)
				}
				refs[ref] = id
			}
		}
	}
	for prefix, rows := range w.imports {
		if imported[prefix] != rows {
			t.Fatalf("round %d: %d customers %q…, the file has %d rows", round, imported[prefix], prefix, rows)
		}
	}
	// Pushed ledger entries once; each balance the sum of its ledger.
	sums := map[string]int{}
	for id, e := range entries {
		sums[e["customer_id"].(string)] += entryPoints(e)
		if strings.HasPrefix(id, "pe-") || strings.HasPrefix(id, "pr-") { // the phone's
			if !w.acked["loyalty_entries"][id] {
				t.Fatalf("round %d: loyalty entry %s is stored but was never accepted", round, id)
			}
		}
	}
	for c, want := range w.points {
		if sums[c] != want {
			t.Fatalf("round %d: customer %s: ledger sums %d, the accepted entries %d", round, c, sums[c], want)
		}
	}
	for id, c := range customers {
		l := loyaltyOf(t, id, c)
		if len(l.Held) > 0 {
			t.Errorf("round %d: customer %s still holds points: %v", round, id, l.Held)
		}
		if balance := l.Balance; balance != sums[id] {
			t.Errorf("round %d: customer %s: balance %d, ledger sum %d", round, id, balance, sums[id])
		}
	}
	// Merges: each child on its survivor once.
	for survivor, kids := range w.kids {
		for _, id := range kids {
			var rec map[string]any
			for _, table := range []string{"interactions", "loyalty_entries"} {
				if fresh.local[table][id] != nil {
					rec = fresh.local[table][id]
				}
			}
			if rec == nil || rec["customer_id"] != survivor {
				t.Fatalf("round %d: record %s of a merge into %s: %v", round, id, survivor, rec)
			}
		}
		n := 0
		for _, table := range []string{"interactions", "loyalty_entries"} {
			for _, rec := range fresh.local[table] {
				if rec["customer_id"] == survivor {
					n++
				}
			}
		}
		if n != len(kids) {
			t.Fatalf("round %d: survivor %s holds %d records, the merge brought %d", round, survivor, n, len(kids))
		}
	}
}

// waitForReminders waits until every task's due reminder reached every
// token and is recorded sent, then checks that none of this round's reached
// a token twice but those the kill cut off before their record: once before
// the kill, once after, under one collapse key. Once a reminder is recorded
// sent no worker pushes it again (a worker that claims it later finds it
// sent), so the count is final without a pause for a doubled push.
//
// seen holds how often each task was pushed to each token by the end of the
// earlier rounds; it is brought up to date.
func waitForReminders(t *testing.T, round int, r *replica, admin string, fcm *crashFCM, tasks, roundTasks map[string]bool, killedAt time.Time, tokens []string, seen map[[2]string]int) {
	t.Helper()
	missing := func() []string {
		got := fcm.byFiring()
		var miss []string
		for task := range tasks {
			for _, tok := range tokens {
				if len(got[[2]string{task, tok}]) == 0 {
					miss = append(miss, task+" → "+tok)
				}
			}
		}
		return miss
	}
	deadline := time.Now().Add(45 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if miss := missing(); len(miss) > 0 {
		t.Fatalf("round %d: reminders due never pushed: %v", round, miss)
	}
	unsent := func() []string {
		var open []string
		for task := range roundTasks {
			for _, rem := range r.must(t, 200, "GET", "/v1/tasks/"+task+"/reminders", admin, nil)["data"].([]any) {
				if rem := rem.(map[string]any); rem["kind"] == models.NotifyTaskDue && rem["state"] != models.ReminderSent {
					open = append(open, fmt.Sprintf("%s: %v", task, rem["state"]))
				}
			}
		}
		return open
	}
	for len(unsent()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if open := unsent(); len(open) > 0 {
		t.Fatalf("round %d: reminders pushed but not recorded sent: %v", round, open)
	}
	for key, pushes := range fcm.byFiring() {
		if len(pushes) < 2 {
			continue
		}
		if !roundTasks[key[0]] {
			if len(pushes) != seen[key] {
				t.Errorf("round %d: task %s of an earlier round pushed to %s again: %+v", round, key[0], key[1], pushes)
			}
			continue
		}
		if len(pushes) > 2 || !pushes[0].at.Before(killedAt) || pushes[1].at.Before(killedAt) {
			t.Errorf("round %d: task %s pushed to %s %d times, not once before the kill and once after: %+v", round, key[0], key[1], len(pushes), pushes)
		}
		if p := pushes[1]; p.collapse != pushes[0].collapse || p.notification != pushes[0].notification {
			t.Errorf("round %d: task %s pushed to %s again under another collapse key: %+v", round, key[0], key[1], pushes)
		}
		t.Logf("round %d: task %s pushed to %s again after the restart (the kill fell between the push and its record)", round, key[0], key[1])
	}
	for key, pushes := range fcm.byFiring() {
		seen[key] = len(pushes)
	}
}

func crashCustomer(t *testing.T, r *replica, token, name string) string {
	t.Helper()
	return r.must(t, 201, "POST", "/v1/customers?on_duplicate=flag", token, map[string]any{"name": name, "kind": "company"})["id"].(string)
}

// crashChild creates an interaction, or a loyalty entry earning points, on
// customer and returns its id.
func crashChild(t *testing.T, r *replica, token, table, customer string, points int) string {
	t.Helper()
	body := map[string]any{"customer_id": customer, "channel": "phone"}
	if table == "loyalty_entries" {
		body = map[string]any{"customer_id": customer, "kind": "earn", "points": points, "reason": "merge test"}
	}
	return r.must(t, 201, "POST", "/v1/"+table, token, body)["id"].(string)
}

func crashPointsRow(id, customer, kind string, points int) map[string]any {
	return map[string]any{"id": id, "_status": "created", "_changed": "", "customer_id": customer,
		"kind": kind, "points": points, "reason": "visit", "reference": "", "balance_after": 0}
}

// crashUpload posts a customers CSV to /v1/imports.
func crashUpload(r *replica, token, name string, content []byte) (int, map[string]any) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", r.base+"/v1/imports", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// crashImport imports content and waits until the import is done.
func crashImport(t *testing.T, r *replica, token string, content []byte) string {
	t.Helper()
	status, m := crashUpload(r, token, "customers.csv", content)
	if status != 202 {
		t.Fatalf("import: %d %v", status, m)
	}
	id := m["id"].(string)
	waitFor(t, "import "+id+" done", func() bool {
		im := r.must(t, 200, "GET", "/v1/imports/"+id, token, nil)
		if im["state"] != "running" && im["state"] != "done" {
			t.Fatalf("import %s: %v", id, im)
		}
		return im["state"] == "done"
	})
	return id
}

// handset is a WatermelonDB-like client of every table: its local copy, its
// cursor and its device's session.
type handset struct {
	token  string
	cursor string
	local  map[string]map[string]map[string]any // table → id → record
}

func newHandset(t *testing.T, r *replica, email, device string) *handset {
	return &handset{token: login(t, r, email, device), cursor: "null", local: map[string]map[string]map[string]any{}}
}

// pull pages through r until nothing more remains; anything but 200 (a 410
// or 422 that would make the phone reset) fails the test.
func (h *handset) pull(t *testing.T, r *replica) {
	t.Helper()
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pull never ends")
		}
		status, m := r.call(t, "GET", "/v1/sync/pull?last_pulled_at="+h.cursor+"&schema_version=2&migration=null", h.token, nil)
		if status != 200 {
			t.Fatalf("%s pull: %d %v", r.name, status, m)
		}
		for table, c := range m["changes"].(map[string]any) {
			if h.local[table] == nil {
				h.local[table] = map[string]map[string]any{}
			}
			c := c.(map[string]any)
			for _, kind := range []string{"created", "updated"} {
				list, _ := c[kind].([]any)
				for _, rec := range list {
					rec := rec.(map[string]any)
					h.local[table][rec["id"].(string)] = rec
				}
			}
			deleted, _ := c["deleted"].([]any)
			for _, id := range deleted {
				delete(h.local[table], id.(string))
			}
		}
		h.cursor = fmt.Sprint(int64(m["timestamp"].(float64)))
		if m["has_more"] != true {
			return
		}
	}
}

// push sends created records and returns the status and the ids accepted
// per table.
func (h *handset) push(t *testing.T, r *replica, created map[string][]map[string]any) (int, map[string][]string, map[string]any) {
	t.Helper()
	changes := map[string]any{}
	for table, rows := range created {
		changes[table] = map[string]any{"created": rows, "updated": []any{}, "deleted": []any{}}
	}
	status, m := r.call(t, "POST", "/v1/sync/push?last_pulled_at="+h.cursor, h.token, map[string]any{"changes": changes})
	accepted := map[string][]string{}
	if a, ok := m["accepted"].(map[string]any); ok {
		for table, ids := range a {
			for _, id := range ids.([]any) {
				accepted[table] = append(accepted[table], id.(string))
			}
		}
	}
	return status, accepted, m
}

// diff says how other's copy differs from h's, in ids and versions.
func (h *handset) diff(other *handset) string {
	var out []string
	for table, recs := range h.local {
		for id, rec := range recs {
			o := other.local[table][id]
			switch {
			case o == nil:
				out = append(out, fmt.Sprintf("%s %s missing", table, id))
			case fmt.Sprint(o["version"]) != fmt.Sprint(rec["version"]):
				out = append(out, fmt.Sprintf("%s %s at version %v, %v on the server", table, id, o["version"], rec["version"]))
			}
		}
		for id := range other.local[table] {
			if recs[id] == nil {
				out = append(out, fmt.Sprintf("%s %s is not on the server", table, id))
			}
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("and %d more", len(out)-5))
	}
	return strings.Join(out, "; ")
}

// crashFCM is a fake FCM send endpoint that keeps every push it received.
// It answers after a network's delay each way, so that a kill can fall
// before a push got through, or after it got through but before its answer.
type crashFCM struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []crashPush
}

type crashPush struct {
	task, token, kind, notification, collapse string
	at                                        time.Time
}

func newCrashFCM() *crashFCM {
	f := &crashFCM{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Message struct {
				Token   string            `json:"token"`
				Data    map[string]string `json:"data"`
				Android struct {
					CollapseKey string `json:"collapse_key"`
				} `json:"android"`
			} `json:"message"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		// The network's latency, both ways: a sender killed before its
		// request got through has sent nothing.
		select {
		case <-time.After(20 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		m := req.Message
		f.mu.Lock()
		f.got = append(f.got, crashPush{task: m.Data["task_id"], token: m.Token, kind: m.Data["kind"],
			notification: m.Data["notification_id"], collapse: m.Android.CollapseKey, at: time.Now()})
		f.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name": "projects/crash/messages/1"}`)
	}))
	return f
}

// byFiring groups the task-due pushes by task and token.
func (f *crashFCM) byFiring() map[[2]string][]crashPush {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[[2]string][]crashPush{}
	for _, p := range f.got {
		if p.kind == "task_due" {
			k := [2]string{p.task, p.token}
			out[k] = append(out[k], p)
		}
	}
	return out
}
