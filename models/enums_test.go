package models_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// ruleCase is a model type, a record of it its validations accept (as JSON),
// and how to run them.
type ruleCase struct {
	typ   reflect.Type
	valid map[string]any
	check func(raw []byte) error
}

func prepared[R any](prepare func(*R) error) func([]byte) error {
	return func(raw []byte) error {
		var r R
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		return prepare(&r)
	}
}

func ruleCases() []ruleCase {
	st := models.Settings{}.WithDefaults()
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	due := now.Add(48 * time.Hour).Format(time.RFC3339)
	customer := prepared(func(c *models.Customer) error { return c.Prepare(st) })
	return []ruleCase{
		// A person: gender is for persons alone; company is listed and accepted
		// with no gender.
		{reflect.TypeFor[models.Customer](), map[string]any{"name": "Li Na", "kind": "person"}, customer},
		{reflect.TypeFor[models.CustomerFields](), map[string]any{"name": "Li Na", "kind": "person"}, customer},
		// A social account is validated as part of its customer.
		{reflect.TypeFor[models.Social](), map[string]any{"network": "wechat", "handle": "acme"}, func(raw []byte) error {
			var social map[string]any
			_ = json.Unmarshal(raw, &social)
			c, _ := json.Marshal(map[string]any{"name": "Acme Trading", "social": []any{social}})
			return customer(c)
		}},
		{reflect.TypeFor[models.Contact](), map[string]any{"customer_id": "c1", "name": "Li Lei"},
			prepared(func(c *models.Contact) error { return c.Prepare(st) })},
		{reflect.TypeFor[models.Interaction](), map[string]any{"customer_id": "c1", "channel": "phone"},
			prepared(func(i *models.Interaction) error { return i.Prepare(now) })},
		{reflect.TypeFor[models.Task](), map[string]any{"customer_id": "c1", "title": "Call back", "due_at": due},
			prepared(func(t *models.Task) error { return t.Prepare(now) })},
		{reflect.TypeFor[models.Survey](), map[string]any{"customer_id": "c1", "csat": 5},
			prepared(func(s *models.Survey) error { return s.Prepare(now) })},
		{reflect.TypeFor[models.LoyaltyEntry](), map[string]any{"customer_id": "c1", "kind": "earn", "points": 10, "reason": "order"},
			prepared(func(e *models.LoyaltyEntry) error { return e.Prepare() })},
		{reflect.TypeFor[models.Order](), map[string]any{"customer_id": "c1", "items": []any{map[string]any{"product": "Tea", "quantity": 1, "unit_price": 100}}},
			prepared(func(o *models.Order) error { return o.Prepare(st, now) })},
		{reflect.TypeFor[models.Payment](), map[string]any{"order_id": "o1", "method": "cash", "amount": 100},
			prepared(func(p *models.Payment) error { return p.Prepare(now) })},
		{reflect.TypeFor[models.Ticket](), map[string]any{"customer_id": "c1", "title": "Broken", "type": "repair"},
			prepared(func(t *models.Ticket) error { return t.Prepare() })},
		{reflect.TypeFor[models.Device](), map[string]any{"device_id": "phone-1", "fcm_token": "tok", "platform": "android"},
			prepared(func(d *models.Device) error { return d.Prepare() })},
		{reflect.TypeFor[models.NewUser](), map[string]any{"name": "Wang Wei", "email": "w@x.test", "password": "correct horse battery",
			"role": "rep", "team_id": "t1"}, prepared(func(n *models.NewUser) error { n.Normalize(); return n.Validate() })},
	}
}

// fieldErr tells whether err is a validation error naming field.
func fieldErr(err error, field string) bool {
	var ve *models.ValidationError
	// A nested record's fields are named by their path (social[0].network).
	return errors.As(err, &ve) && slices.ContainsFunc(ve.Fields, func(f models.FieldError) bool {
		return f.Field == field || strings.HasSuffix(f.Field, "."+field)
	})
}

func TestFieldRulesAreTheValidations(t *testing.T) {
	for _, tc := range ruleCases() {
		name := tc.typ.Name()
		with := func(field string, value any, drop bool) []byte {
			m := map[string]any{}
			for k, v := range tc.valid {
				m[k] = v
			}
			if drop {
				delete(m, field)
			} else {
				m[field] = value
			}
			raw, _ := json.Marshal(m)
			return raw
		}
		if err := tc.check(with("", nil, true)); err != nil {
			t.Fatalf("%s: the valid record is refused: %v", name, err)
		}
		rules := models.FieldRules(tc.typ)
		if len(rules) == 0 {
			t.Errorf("%s has no rules", name)
		}
		for field, rule := range rules {
			if strings.Contains(field, ".") {
				t.Errorf("%s: nested rule %s is not tested here", name, field)
			}
			for _, value := range rule.Enum {
				if err := tc.check(with(field, value, false)); err != nil {
					t.Errorf("%s.%s = %q is listed but refused: %v", name, field, value, err)
				}
			}
			if len(rule.Enum) > 0 {
				if err := tc.check(with(field, "not-a-listed-value", false)); !fieldErr(err, field) {
					t.Errorf("%s.%s = an unlisted value: %v, want a field error", name, field, err)
				}
			}
			if rule.Required {
				if err := tc.check(with(field, nil, true)); !fieldErr(err, field) {
					t.Errorf("%s.%s missing: %v, want a field error", name, field, err)
				}
			} else if len(rule.Enum) > 0 && !slices.Contains(rule.Enum, "") {
				// Not required: a record without it is accepted (the
				// server fills it).
				if err := tc.check(with(field, nil, true)); err != nil {
					t.Errorf("%s.%s is not required, but a record without it is refused: %v", name, field, err)
				}
			}
		}
	}
}
