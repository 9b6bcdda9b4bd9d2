package crm

import (
	"context"
	"errors"
	"fmt"

	"github.com/fieldcrm/fieldcrm/models"
)

// reference checks a field of a record that names another record of r (an
// interaction's contact_id, a survey's ticket_id): the named record must be
// live, in the actor's tenant, visible to the actor, and belong to customerID.
// Anything else is a validation error on field, worded the same whether the
// record is missing, deleted, hidden or of another tenant, so a reference
// tells nobody what exists elsewhere. An empty id, and an id an edit leaves as
// it was, are not checked: a record keeps its references when its customer is
// merged or the actor's access narrows.
func reference[R any](ctx context.Context, r *Records[R], a models.Actor, field, id, was, customerID string, editing bool) error {
	if id == "" || (editing && id == was) {
		return nil
	}
	bad := &models.ValidationError{Fields: []models.FieldError{{Field: field,
		Message: fmt.Sprintf("no %s with id %q of this customer", r.coll[:len(r.coll)-1], id)}}}
	rec, err := r.load(ctx, a.TenantID, id)
	if errors.Is(err, models.ErrNotFound) {
		return bad
	}
	if err != nil {
		return err
	}
	m := meta(&rec)
	parent, isChild := any(&rec).(interface{ Parent() string })
	if m.Deleted() || m.TenantID != a.TenantID || !r.canSee(a, &rec) || (isChild && parent.Parent() != customerID) {
		return bad
	}
	return nil
}
