package crm

import (
	"context"
	"slices"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

func (s *Service) contactHooks() hooks[models.Contact] {
	return hooks[models.Contact]{
		prepare: func(ctx context.Context, w *write[models.Contact]) error {
			if err := w.rec.Prepare(w.settings); err != nil {
				return err
			}
			c, err := s.parentOf(ctx, w.actor, &w.rec.Meta, &w.rec.ChildFields, oldChild(w, func(r *models.Contact) *models.ChildFields { return &r.ChildFields }))
			if err == nil && c.Kind != models.KindCompany {
				return &models.ValidationError{Fields: []models.FieldError{{Field: "customer_id", Message: "contacts belong to company customers"}}}
			}
			return err
		},
		after: func(ctx context.Context, w *write[models.Contact]) error {
			if !w.rec.IsPrimary || (w.old != nil && w.old.IsPrimary) {
				return nil
			}
			// One primary contact per customer: the new one takes over.
			others, err := childrenOf(ctx, s.Contacts, w.actor.TenantID, w.rec.CustomerID, maxChildren)
			if err != nil {
				return err
			}
			others.recs = slices.DeleteFunc(others.recs, func(c models.Contact) bool { return c.ID == w.rec.ID || !c.IsPrimary })
			return others.edit(ctx, w.actor, "update", func(_ *models.Meta, rec any) { rec.(*models.Contact).IsPrimary = false })
		},
		filters:  withChild(map[string]filter{"q": described(contains("name"), "part of the contact's name")}),
		sorts:    map[string]string{"name": "name"},
		timeline: func(c *models.Contact) (time.Time, string) { return c.CreatedAt, "contact " + c.Name },
	}
}
