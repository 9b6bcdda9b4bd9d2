package crm

import "github.com/fieldcrm/fieldcrm/models"

// ListFields returns the stored fields the collection's list filters and
// sorts read, and whether its lists also show records assigned to the
// actor. Each filter is given sample values until one passes its check.
func (r *Records[R]) ListFields() (coll string, fields []string, assignee bool) {
	samples := []string{"x", "true", "2026-01-05", models.Stages[0], models.Channels[0], "A"}
	for name, f := range r.h.filters {
		for _, raw := range append([]string{name}, samples...) {
			conds, err := f.conds(raw, models.Settings{PhoneRegion: "CN"})
			if err != nil {
				continue
			}
			for _, c := range conds {
				fields = append(fields, c.Field)
			}
			break
		}
	}
	for _, field := range r.h.sorts {
		fields = append(fields, field)
	}
	return r.coll, fields, r.h.scopeAssignee
}

// Lists returns every collection's records service, for tests that check
// something of all of them.
func (s *Service) Lists() []interface {
	ListFields() (string, []string, bool)
} {
	return []interface {
		ListFields() (string, []string, bool)
	}{s.Customers, s.Contacts, s.Interactions, s.Tasks, s.Orders, s.Payments, s.Tickets, s.Surveys,
		s.LoyaltyEntries, s.Conflicts, s.Notifications}
}
