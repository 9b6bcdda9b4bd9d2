package crm

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/fieldcrm/fieldcrm/models"
)

// Any JSON values a device's columns may hold decode onto a record without a
// panic, or fail as the record's validation error (the row is refused alone).
func FuzzDecodeColumns(f *testing.F) {
	for _, s := range []string{
		`{"name":"张伟","kind":"person","phones":[{"number":"+8613800138000"}]}`,
		`{"tags":{},"created_at":"0001-01-01T00:00:00Z"}`,
		`{"name":null,"points":1e300}`,
		`{"customer_id":"c1","channel":"visit","occurred_at":"2026-01-01T00:00:00Z","summary":"s"}`,
		`{"phones":"not a list","address":[1,2]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var values map[string]json.RawMessage
		if json.Unmarshal([]byte(raw), &values) != nil {
			return
		}
		for _, err := range []error{
			decodeColumns(&models.Customer{}, values),
			decodeColumns(&models.Interaction{}, values),
			decodeColumns(&models.LoyaltyEntry{}, values),
		} {
			var ve *models.ValidationError
			if err != nil && !errors.As(err, &ve) {
				t.Fatalf("decodeColumns(%s): %v is not the record's validation error", raw, err)
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
