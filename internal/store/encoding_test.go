package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// A record's maps (field_seqs, field_devices, custom fields) are stored
// with their keys in order, whatever order Go's map gives, so records of
// one shape share one stored schema: written in a new order each time,
// every record had a schema of its own, parsed again at each read.
func TestStoredMapsKeepTheirKeysInOrder(t *testing.T) {
	st := env.Store(t)
	ctx := context.Background()
	now := time.Now().UTC()
	c := models.Customer{Meta: models.Meta{ID: models.NewID(), TenantID: models.NewID(), Version: 1, CreatedAt: now, UpdatedAt: now,
		FieldSeqs: map[string]int64{}, FieldDevices: map[string]string{}}}
	c.Name = "Ordered"
	c.CustomFields = map[string]any{}
	for i := range 40 {
		name := fmt.Sprintf("f%02d", (i*17)%40)
		c.FieldSeqs[name], c.FieldDevices[name] = int64(i), "phone"
		c.CustomFields[name] = map[string]any{"z": i, "a": name}
	}
	check := func(when string) {
		t.Helper()
		raw, err := st.RawDocument(ctx, store.Customers, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{"field_seqs", "field_devices", "custom_fields"} {
			doc, ok := raw.Lookup(field).DocumentOK()
			if !ok {
				t.Fatalf("%s: %s is not a document: %v", when, field, raw.Lookup(field))
			}
			keys := documentKeys(t, doc)
			if len(keys) != 40 || !slices.IsSorted(keys) {
				t.Errorf("%s: %s stored with its keys in the order %v", when, field, keys)
			}
		}
		inner, _ := raw.Lookup("custom_fields", "f07").DocumentOK()
		if keys := documentKeys(t, inner); !slices.Equal(keys, []string{"a", "z"}) {
			t.Errorf("%s: a map inside a custom field stored as %v", when, keys)
		}
	}
	if err := st.Insert(ctx, store.Customers, &c.Meta, c, models.AuditEntry{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	check("inserted")
	c.Version, c.FieldSeqs["zz"], c.FieldDevices["zz"] = 2, 41, "desk"
	delete(c.FieldSeqs, "f00")
	delete(c.FieldDevices, "f00")
	if err := st.Commit(ctx, store.Customers, &c.Meta, c, models.AuditEntry{Action: "update"}); err != nil {
		t.Fatal(err)
	}
	check("replaced")
	var back models.Customer
	raw, err := st.RawDocument(ctx, store.Customers, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := bson.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.FieldSeqs["zz"] != 41 || back.FieldDevices["f07"] != "phone" || len(back.CustomFields) != 40 {
		t.Errorf("read back %v, %v, %d custom fields", back.FieldSeqs, back.FieldDevices, len(back.CustomFields))
	}
	var nothing models.Customer
	nothing.Meta = models.Meta{ID: models.NewID(), TenantID: c.TenantID, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := st.Insert(ctx, store.Customers, &nothing.Meta, nothing, models.AuditEntry{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	raw, err = st.RawDocument(ctx, store.Customers, nothing.ID)
	if err != nil {
		t.Fatal(err)
	}
	if typ := raw.Lookup("field_seqs").Type; typ != bson.TypeNull {
		t.Errorf("a nil map stored as %s, not null", typ)
	}
}

func documentKeys(t *testing.T, doc bson.Raw) []string {
	t.Helper()
	elems, err := doc.Elements()
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(elems))
	for i, e := range elems {
		keys[i] = e.Key()
	}
	return keys
}
