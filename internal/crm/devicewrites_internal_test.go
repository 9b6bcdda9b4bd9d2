package crm

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// decoders decode columns onto a new record of each synced collection;
// FuzzDecodeColumns checks that they are store.SyncedCollections.
var decoders = map[string]func(map[string]json.RawMessage) error{
	store.Customers: decodeOnto[models.Customer], store.Contacts: decodeOnto[models.Contact],
	store.Interactions: decodeOnto[models.Interaction], store.Tasks: decodeOnto[models.Task],
	store.Orders: decodeOnto[models.Order], store.Payments: decodeOnto[models.Payment],
	store.Tickets: decodeOnto[models.Ticket], store.Surveys: decodeOnto[models.Survey],
	store.LoyaltyEntries: decodeOnto[models.LoyaltyEntry], store.Conflicts: decodeOnto[models.Conflict],
	store.Notifications: decodeOnto[models.Notification],
}

func decodeOnto[R any](values map[string]json.RawMessage) error { return decodeColumns(new(R), values) }

// Any JSON values a device's columns may hold decode onto a record of any
// synced collection without a panic, or fail as the record's validation
// error (the row is refused alone).
func FuzzDecodeColumns(f *testing.F) {
	for _, s := range []string{
		`{"name":"张伟","kind":"person","phones":[{"number":"+8613800138000"}]}`,
		`{"tags":{},"created_at":"0001-01-01T00:00:00Z"}`,
		`{"name":null,"points":1e300}`,
		`{"customer_id":"c1","channel":"visit","occurred_at":"2026-01-01T00:00:00Z","summary":"s"}`,
		`{"phones":"not a list","address":[1,2]}`,
		`{"title":"Call","due_at":1e300}`,
		`{"due_at":"10000-01-01T00:00:00Z","remind_at":-1}`,
		`{"items":"[{"}`,
		`{"items":[{"product":"Pump","quantity":1e300,"unit_price":-1}],"payment_term_days":1e300,"ordered_on":"2026-02-30"}`,
		`{"order_id":"o1","amount":1e300,"paid_at":"yesterday"}`,
		`{"priority":["high"],"status":{}}`,
		`{"csat":1e300,"nps":-1e300,"taken_at":true}`,
		`{"read_at":1e300,"user_id":7}`,
		`{"of":"[{","server_value":{}}`,
	} {
		f.Add(s)
	}
	if got := slices.Sorted(maps.Keys(decoders)); !slices.Equal(got, slices.Sorted(slices.Values(store.SyncedCollections))) {
		f.Fatalf("decoders has %v; the synced collections are %v", got, store.SyncedCollections)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var values map[string]json.RawMessage
		if json.Unmarshal([]byte(raw), &values) != nil {
			return
		}
		for coll, decode := range decoders {
			var ve *models.ValidationError
			if err := decode(values); err != nil && !errors.As(err, &ve) {
				t.Fatalf("decodeColumns(%s) onto %s: %v is not the record's validation error", raw, coll, err)
			}
		}
	})
}

func TestUnionOfListsKeepsTheServersOrderThenAddsTheDevicesNewEntries(t *testing.T) {
	got, policy, kept := unionOfLists(json.RawMessage(`["vip","north"]`), json.RawMessage(`["north","wholesale","vip","new"]`))
	if string(got) != `["vip","north","wholesale","new"]` || policy != models.PolicyUnion || kept != "union" {
		t.Fatalf("union = %s, %s, %s", got, policy, kept)
	}
	if got, _, _ := unionOfLists(json.RawMessage(`null`), json.RawMessage(`["a"]`)); string(got) != `["a"]` {
		t.Fatalf("union with no server tags = %s", got)
	}
}
