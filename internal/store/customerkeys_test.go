package store_test

import (
	"context"
	"fmt"
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
