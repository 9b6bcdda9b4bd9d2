package crm_test

import (
	"slices"
	"testing"

	"github.com/fieldcrm/fieldcrm/internal/store"
)

// Every filter and sort a list accepts, and the visibility fields, has an
// index that starts with the tenant and then that field, in the one list of
// indexes every engine gets (store.QueryIndexes: compound indexes on
// MongoDB, expression indexes on the embedded engines); an array field may
// instead be searched by substring through an index of its own
// (store.SearchedFields: search keys, a contact's name, an interaction's
// content).
func TestEveryListFilterAndSortHasItsIndex(t *testing.T) {
	svc, _ := newTenant(t)
	indexes := store.QueryIndexes()
	for _, list := range svc.Lists() {
		coll, fields, assignee := list.ListFields()
		fields = append(fields, "owner_id", "team_id", "updated_at", "created_at")
		if assignee {
			fields = append(fields, "assignee_id")
		}
		if len(fields) == 4 {
			t.Fatalf("%s: no filter or sort found: the check proves nothing", coll)
		}
		for _, field := range fields {
			if slices.Contains(store.SearchedFields()[coll], field) {
				continue
			}
			if !slices.ContainsFunc(indexes[coll], func(ix store.Index) bool { return len(ix.Fields) > 1 && ix.Fields[1] == field }) {
				t.Errorf("%s: nothing indexes (tenant_id, %s)", coll, field)
			}
		}
	}
}
