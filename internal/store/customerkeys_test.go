package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

func putCustomer(t *testing.T, st *store.Store, tenant, id string, keys ...string) models.Customer {
	t.Helper()
	c := models.Customer{Meta: models.Meta{ID: id, TenantID: tenant, Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()}, DedupeKeys: keys}
	c.Name = id
	if err := st.Insert(context.Background(), store.Customers, &c.Meta, c, models.AuditEntry{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	return c
}

func names(cs []models.Customer) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return fmt.Sprint(out)
}

func TestCustomerKeyIndexFindsOnlyLiveHolders(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	a := putCustomer(t, st, "t1", "a", "phone +861", "email a@x")
	putCustomer(t, st, "t1", "b", "phone +861")
	putCustomer(t, st, "t2", "other-tenant", "phone +861")
	// Customers written before the index existed are found after a rebuild.
	if n, err := st.RebuildCustomerKeys(ctx); err != nil || n != 3 {
		t.Fatalf("rebuild: %d %v", n, err)
	}
	got, err := st.CustomersSharingKeys(ctx, "t1", []string{"phone +861"}, "", 10)
	if err != nil || names(got) != "[a b]" {
		t.Fatalf("by phone: %s %v", names(got), err)
	}
	if got, _ := st.CustomersSharingKeys(ctx, "t1", []string{"phone +861", "email a@x"}, "a", 10); names(got) != "[b]" {
		t.Fatalf("except a: %s", names(got))
	}
	// The index follows what the CRM tells it: a's phone is no longer indexed.
	if err := st.IndexCustomerKeys(ctx, "t1", "a", a.DedupeKeys, []string{"email a@x"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.CustomersSharingKeys(ctx, "t1", []string{"phone +861"}, "", 10); names(got) != "[b]" {
		t.Fatalf("after a's change: %s", names(got))
	}
	// An id the index names for a key its customer does not have is not offered.
	if err := st.IndexCustomerKeys(ctx, "t1", "b", nil, []string{"email a@x"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.CustomersSharingKeys(ctx, "t1", []string{"email a@x"}, "", 10); names(got) != "[a]" {
		t.Fatalf("a stale entry was offered: %s", names(got))
	}
	if got, _ := st.CustomersSharingKeys(ctx, "t1", []string{"phone +861"}, "", 1); len(got) != 1 {
		t.Fatalf("limit: %s", names(got))
	}
}

// Customers created at the same moment with a key in common are all listed
// under it: the read and write of a key document are one writer's at a time.
func TestCustomersCreatedTogetherAllHoldTheirSharedKey(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("c%02d", i)
			c := models.Customer{Meta: models.Meta{ID: id, TenantID: "t1", Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()},
				DedupeKeys: []string{"phone +8613800000000", "email " + id + "@x"}}
			errs <- st.InsertCustomer(ctx, &c, models.AuditEntry{Action: "create"}, c.LookupKeys(), 0)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	holders, err := st.KeyHolders(ctx, "t1", "phone +8613800000000")
	if err != nil || len(holders) != n {
		t.Fatalf("the shared key lists %d of %d customers (%v): %v", len(holders), n, err, holders)
	}
}

// A customer whose id is taken is refused with models.ErrConflict, and its
// keys are not indexed: the record and its keys are one write.
func TestCustomerWithATakenIDIndexesNoKey(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	putCustomer(t, st, "t1", "a", "phone +861")
	c := models.Customer{Meta: models.Meta{ID: "a", TenantID: "t1", Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()},
		DedupeKeys: []string{"email other@x"}}
	err := st.InsertCustomer(ctx, &c, models.AuditEntry{Action: "create"}, c.LookupKeys(), 0)
	if !errors.Is(err, models.ErrConflict) {
		t.Fatalf("a taken id: %v, want a conflict", err)
	}
	if holders, err := st.KeyHolders(ctx, "t1", "email other@x"); err != nil || holders != nil {
		t.Fatalf("the refused customer's key lists %v (%v)", holders, err)
	}
}
