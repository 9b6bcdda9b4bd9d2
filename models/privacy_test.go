package models_test

import (
	"encoding/json"
	"testing"

	"github.com/fieldcrm/fieldcrm/models"
)

// Every field an erasure scrubs from the version history must be a field of
// the record type: a misspelt name would leave the erased values there.
func TestPersonalFieldsNameRealFields(t *testing.T) {
	types := map[string]any{
		"customers": models.Customer{}, "contacts": models.Contact{}, "interactions": models.Interaction{},
		"tasks": models.Task{}, "orders": models.Order{}, "tickets": models.Ticket{}, "surveys": models.Survey{},
		"loyalty_entries": models.LoyaltyEntry{}, "payments": models.Payment{}, "notifications": models.Notification{},
		"conflicts": models.Conflict{},
	}
	if len(types) != len(models.PersonalFields) {
		t.Fatalf("PersonalFields covers %d collections, the test %d", len(models.PersonalFields), len(types))
	}
	for coll, fields := range models.PersonalFields {
		zero, ok := types[coll]
		if !ok {
			t.Fatalf("no record type for %s", coll)
		}
		raw, _ := json.Marshal(zero)
		var keys map[string]any
		_ = json.Unmarshal(raw, &keys)
		for _, f := range fields {
			if _, ok := keys[f]; !ok {
				t.Errorf("%s has no field %q", coll, f)
			}
		}
	}
}

func TestErasingACustomerKeepsWhatReportsCount(t *testing.T) {
	c := models.Customer{CustomerFields: models.CustomerFields{
		Kind: "person", Name: "王小明", Region: "North", Stage: "won", ValueTier: "gold", CreditLimit: 5000,
		ContactPoints: models.ContactPoints{Phones: []models.Phone{{Number: "+8613800138000"}}},
		BirthDate:     "1990-03-07", CustomFields: map[string]any{"wechat": "wxm"},
	}, Number: "C2026-000001-3", NationalIDSealed: "sealed", DedupeKeys: []string{"phone +8613800138000"}}
	c.ErasePersonalData()
	if c.Name != models.Erased || len(c.Phones) != 0 || c.BirthDate != "" || len(c.CustomFields) != 0 ||
		c.NationalIDSealed != "" || len(c.DedupeKeys) != 0 {
		t.Fatalf("personal data left: %+v", c)
	}
	if c.Kind != "person" || c.Region != "North" || c.Stage != "won" || c.ValueTier != "gold" || c.CreditLimit != 5000 || c.Number != "C2026-000001-3" {
		t.Fatalf("report fields lost: %+v", c)
	}
}
