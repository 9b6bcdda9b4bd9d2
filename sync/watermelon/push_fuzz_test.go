package watermelon

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// syncedModels are the record types of the synced tables, by table;
// FuzzPushRowColumns checks that they are store.SyncedCollections.
var syncedModels = map[string]any{
	store.Customers: &models.Customer{}, store.Contacts: &models.Contact{}, store.Interactions: &models.Interaction{},
	store.Tasks: &models.Task{}, store.Orders: &models.Order{}, store.Payments: &models.Payment{},
	store.Tickets: &models.Ticket{}, store.Surveys: &models.Survey{}, store.LoyaltyEntries: &models.LoyaltyEntry{},
	store.Conflicts: &models.Conflict{}, store.Notifications: &models.Notification{},
}

// A pushed row that checkRow lets through, for any synced table, is turned
// into the record's JSON without a panic; what fails there is the row's own
// validation error (the row is rejected alone), and every column's JSON is
// valid JSON. (What the CRM does with those values is fuzzed there:
// FuzzDecodeColumns.)
func FuzzPushRowColumns(f *testing.F) {
	for _, s := range []string{
		`{"id":"c1","name":"张伟","kind":"person","phones":"[{\"number\":\"+8613800138000\"}]","_status":"created","_changed":""}`,
		`{"id":"c1","name":"x","updated_at":1e300}`,
		`{"id":"c1","tags":"{}","created_at":-62135596800001}`,
		`{"id":"c1","_changed":"name,,nope","name":null}`,
		`{"id":"i1","customer_id":"c1","channel":"visit","occurred_at":1767225600000,"summary":"s"}`,
		`{"id":"","x":1}`,
		`{"id":"t1","customer_id":"c1","title":"Call","due_at":1e300}`,
		`{"id":"t1","due_at":-1e300,"remind_at":"tomorrow"}`,
		`{"id":"o1","customer_id":"c1","items":"[{","ordered_on":"2026-02-30"}`,
		`{"id":"o1","items":"[{\"product\":\"Pump\",\"quantity\":1e300,\"unit_price\":-1}]","payment_term_days":1e300}`,
		`{"id":"p1","order_id":"o1","amount":1e300,"paid_at":1e17,"method":"cash"}`,
		`{"id":"k1","customer_id":"c1","type":"repair","priority":"whenever","due_at":"1e300"}`,
		`{"id":"s1","customer_id":"c1","csat":1e300,"nps":-1,"taken_at":true}`,
		`{"id":"l1","customer_id":"c1","kind":"earn","points":1e300}`,
		`{"id":"n1","read_at":1e300,"_changed":"read_at"}`,
		`{"id":"x1","server_value":"{","of":"[{"}`,
	} {
		f.Add(s)
	}
	tables := map[string][]Column{}
	for name, model := range syncedModels {
		tables[name] = columnsOf(model)
	}
	if got := slices.Sorted(maps.Keys(tables)); !slices.Equal(got, slices.Sorted(slices.Values(store.SyncedCollections))) {
		f.Fatalf("syncedModels has %v; the synced collections are %v", got, store.SyncedCollections)
	}
	f.Fuzz(func(t *testing.T, rowJSON string) {
		var row map[string]any
		if json.Unmarshal([]byte(rowJSON), &row) != nil {
			return
		}
		for name, cols := range tables {
			v := &models.ValidationError{}
			checkRow(v, "row", row, cols)
			if v.Err() != nil {
				continue
			}
			values, err := writable(row, cols)
			if err != nil {
				var ve *models.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("writable(%s) as %s: %v is not the row's validation error", rowJSON, name, err)
				}
				continue
			}
			for col, raw := range values {
				if !json.Valid(raw) {
					t.Fatalf("writable(%s) as %s: column %s is %s, not JSON", rowJSON, name, col, raw)
				}
			}
		}
	})
}

// Any migration object the pull accepts names tables and columns without a
// panic.
func FuzzCheckMigration(f *testing.F) {
	for _, s := range []string{
		`{"from":1,"tables":["customers"],"columns":[{"table":"tasks","columns":["due_at"]}]}`,
		`{"from":0}`, `{"from":-1,"tables":null}`, `{"columns":[{"table":"","columns":null}]}`, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var m Migration
		if json.Unmarshal([]byte(raw), &m) != nil {
			return
		}
		if err := CheckMigration(m); err != nil {
			var ve *models.ValidationError
			if !errors.As(err, &ve) || m.From >= 1 {
				t.Fatalf("CheckMigration(%s) = %v", raw, err)
			}
			return
		}
		if m.From < 1 {
			t.Fatalf("CheckMigration(%s) accepted from %d", raw, m.From)
		}
		for _, name := range []string{"customers", "tasks", ""} {
			_ = m.names(name)
		}
	})
}
