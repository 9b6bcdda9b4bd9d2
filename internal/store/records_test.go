package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

type note struct {
	models.Meta `bson:",inline"`
	Text        string `bson:"text"`
}

func newNote(tenant, text string) note {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return note{Meta: models.Meta{ID: models.NewID(), TenantID: tenant, Version: 1, CreatedAt: now, UpdatedAt: now}, Text: text}
}

// Of many writers that all read version 1, exactly one commits version 2; the
// others get ErrConflict and the audit log holds one entry per version.
func TestCommitOfOneVersionHasExactlyOneWinner(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	n := newNote("t1", "v1")
	if err := st.Insert(ctx, store.Tasks, &n.Meta, n, models.AuditEntry{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	results := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := n
			next.Version = 2
			next.Text = fmt.Sprint("writer ", i)
			results[i] = st.Commit(ctx, store.Tasks, &next.Meta, next, models.AuditEntry{Action: "update"})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, models.ErrConflict):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers committed version 2", wins)
	}
	var stored note
	if err := st.Get(ctx, store.Tasks, "t1", n.ID, &stored); err != nil || stored.Version != 2 {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	audit, err := st.Audit(ctx, "t1", store.Tasks, n.ID, nil, 10)
	if err != nil || len(audit) != 2 {
		t.Fatalf("audit %v, %v", audit, err)
	}
	if err := st.Get(ctx, store.Tasks, "other-tenant", n.ID, &stored); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("another tenant read the record: %v", err)
	}
}

// A writer that died between its claim and its write must not wedge the
// record: once the claim is old, the next writer clears it and commits.
func TestCommitClearsAClaimLeftByACrashedWriter(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	n := newNote("t1", "v1")
	if err := st.Insert(ctx, store.Tasks, &n.Meta, n, models.AuditEntry{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	// The crashed writer's claim on version 2, two minutes old.
	crashed := n
	crashed.Version = 2
	crashed.UpdatedAt = time.Now().UTC().Add(-2 * time.Minute)
	if err := st.InsertAuditForTest(ctx, store.Tasks, &crashed.Meta); err != nil {
		t.Fatal(err)
	}
	next := n
	next.Version = 2
	next.Text = "after the crash"
	next.UpdatedAt = time.Now().UTC()
	if err := st.Commit(ctx, store.Tasks, &next.Meta, next, models.AuditEntry{Action: "update"}); err != nil {
		t.Fatalf("commit after a stale claim: %v", err)
	}
	// A fresh claim is respected.
	fresh := next
	fresh.Version = 3
	fresh.UpdatedAt = time.Now().UTC()
	if err := st.InsertAuditForTest(ctx, store.Tasks, &fresh.Meta); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, store.Tasks, &fresh.Meta, fresh, models.AuditEntry{}); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("commit over a fresh claim: %v", err)
	}
}

func TestFindScopesSortsAndPages(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	owners := []string{"rep-a", "rep-b", "", "rep-a", "rep-c"}
	for i, o := range owners {
		n := newNote("t1", fmt.Sprint("note ", 4-i))
		n.OwnerID = o
		n.TeamID = map[string]string{"rep-a": "team-1", "rep-b": "team-1", "rep-c": "team-2"}[o]
		if i == 4 {
			at := time.Now()
			n.DeletedAt = &at
		}
		if err := st.Insert(ctx, store.Tasks, &n.Meta, n, models.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(q models.Query) int {
		t.Helper()
		q.Tenant = "t1"
		var out []note
		if err := st.Find(ctx, store.Tasks, q, &out); err != nil {
			t.Fatal(err)
		}
		return len(out)
	}
	cases := []struct {
		name string
		q    models.Query
		want int
	}{
		{"all live", models.Query{Scope: models.Scope{All: true}}, 4},
		{"with tombstones", models.Query{Scope: models.Scope{All: true}, WithDeleted: true}, 5},
		{"own", models.Query{Scope: models.Scope{OwnerIDs: []string{"rep-a"}}}, 2},
		{"own and pool", models.Query{Scope: models.Scope{OwnerIDs: []string{"rep-a"}, Pool: true}}, 3},
		{"team", models.Query{Scope: models.Scope{TeamIDs: []string{"team-1"}}}, 3},
		{"nothing", models.Query{Scope: models.Scope{}}, 0},
		{"contains", models.Query{Scope: models.Scope{All: true}, Conds: []models.Cond{{Field: "text", Op: models.OpContains, Value: "NOTE 4"}}}, 1},
		{"regex characters are literal", models.Query{Scope: models.Scope{All: true}, Conds: []models.Cond{{Field: "text", Op: models.OpContains, Value: "note .*"}}}, 0},
	}
	for _, c := range cases {
		if got := count(c.q); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// Page by text descending, two at a time.
	var seen []string
	var after *models.ListPosition
	for range 3 {
		var page []note
		q := models.Query{Tenant: "t1", Scope: models.Scope{All: true}, SortField: "text", Desc: true, After: after, Limit: 2}
		if err := st.Find(ctx, store.Tasks, q, &page); err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			seen = append(seen, p.Text)
		}
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		after = &models.ListPosition{Value: last.Text, ID: last.ID}
	}
	if fmt.Sprint(seen) != "[note 4 note 3 note 2 note 1]" {
		t.Fatalf("pages: %v", seen)
	}
}

func TestCustomerNumberClaimsAreUniquePerTenant(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	if err := st.ClaimCustomerNumber(ctx, "t1", 7, "C-7", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := st.ClaimCustomerNumber(ctx, "t1", 7, "C-7", "c2"); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("second claim of 7: %v", err)
	}
	if err := st.ClaimCustomerNumber(ctx, "t2", 7, "C-7", "c3"); err != nil {
		t.Fatalf("another tenant's 7: %v", err)
	}
	_ = st.ClaimCustomerNumber(ctx, "t1", 3, "C-3", "c4")
	if err := st.ClaimCustomerNumbers(ctx, "t1", 10, []string{"C-10", "C-11"}, []string{"c5", "c6"}); err != nil {
		t.Fatal(err)
	}
	for tenant, want := range map[string]int64{"t1": 11, "t2": 7, "none": 0} {
		if top, err := st.HighestCustomerNumber(ctx, tenant); err != nil || top != want {
			t.Fatalf("highest of %s: %d, %v; want %d", tenant, top, err, want)
		}
	}
	// After a restart of the embedded Redis every create may ask for the
	// highest claim: one index entry, not every claim of every tenant.
	if st.ReadsTables() {
		plan, err := st.ExplainHighestCustomerNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "_fieldcrm_seq") || strings.Contains(plan, "SCAN customer") || strings.Contains(plan, "Seq Scan") {
			t.Fatalf("the highest claim is not read from the (tenant_id, seq) index:\n%s", plan)
		}
	}
}
