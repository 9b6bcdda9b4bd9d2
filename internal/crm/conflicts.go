package crm

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// A conflict keeps both values of a column. When the column is sensitive (a
// customer's national ID), or the conflict holds a whole customer (an edit
// that met a delete), both values are stored sealed like the customer's own
// field, so that neither the conflicts table, its synced copies nor the audit
// log of its creation hold the number in clear. Admins read them in clear,
// everyone else masked, as they read the customer.

// sealsConflict reports whether c's values must be sealed.
func sealsConflict(c *models.Conflict) bool {
	if c.Table != store.Customers {
		return false
	}
	_, isSensitive := sensitive[c.Column]
	return c.Column == "*" || isSensitive
}

// sealConflict seals a new conflict's values where they must be.
func (s *Service) sealConflict(c *models.Conflict) {
	if c.Sealed || !sealsConflict(c) {
		return
	}
	c.ServerValue, c.DeviceValue, c.Sealed = s.sealer.Seal(c.ServerValue), s.sealer.Seal(c.DeviceValue), true
}

// openConflict turns a conflict's sealed values back into their JSON, in
// place, for the server's own use (reverting it). Never show the result to
// anyone but an admin.
func (s *Service) openConflict(c *models.Conflict) error {
	if !c.Sealed {
		return nil
	}
	server, err := s.sealer.Open(c.ServerValue)
	if err != nil {
		return fmt.Errorf("open conflict %s: %w", c.ID, err)
	}
	device, err := s.sealer.Open(c.DeviceValue)
	if err != nil {
		return fmt.Errorf("open conflict %s: %w", c.ID, err)
	}
	c.ServerValue, c.DeviceValue, c.Sealed = server, device, false
	return nil
}

// viewConflict shows a sealed conflict's values to admins in clear and to
// everyone else masked.
func (s *Service) viewConflict(a models.Actor, c *models.Conflict) {
	if !c.Sealed {
		return
	}
	if err := s.openConflict(c); err != nil {
		s.log.Error("cannot open a sealed conflict", "conflict", c.ID, "err", err.Error())
		c.ServerValue, c.DeviceValue, c.Sealed = "null", "null", false
		return
	}
	if a.Role == models.RoleAdmin {
		return
	}
	c.ServerValue, c.DeviceValue = maskJSON(c.Column, c.ServerValue), maskJSON(c.Column, c.DeviceValue)
}

// maskJSON masks the sensitive values in a conflict's JSON value: the value
// itself for a sensitive column, the sensitive fields of a whole record ("*").
func maskJSON(column, value string) string {
	if column != "*" {
		var v any
		if json.Unmarshal([]byte(value), &v) != nil {
			return "null"
		}
		out, _ := json.Marshal(masked(column, v))
		return string(out)
	}
	var fields map[string]any
	if json.Unmarshal([]byte(value), &fields) != nil || fields == nil {
		return value
	}
	for k, v := range fields {
		fields[k] = masked(k, v)
	}
	out, _ := json.Marshal(fields)
	return string(out)
}

// How a conflict is settled.
const (
	// ResolveKeep leaves the value the conflict's policy kept.
	ResolveKeep = "keep"
	// ResolveRevert restores the other value.
	ResolveRevert = "revert"
)

// ResolveConflict settles a conflict the actor can see and may edit the
// record of: keep leaves the kept value, revert restores the other one (an
// overwritten value, an edit lost to a delete, a deleted record) through the
// record's own write path, with the actor's rights. Either way the conflict
// is marked resolved, once.
func (s *Service) ResolveConflict(ctx context.Context, a models.Actor, id, action string) (models.Conflict, error) {
	if action != ResolveKeep && action != ResolveRevert {
		return models.Conflict{}, &models.ValidationError{Fields: []models.FieldError{{Field: "action", Message: "must be keep or revert"}}}
	}
	c, err := s.Conflicts.unmasked(ctx, a, id)
	if err != nil {
		return c, err
	}
	if err := s.openConflict(&c); err != nil {
		return models.Conflict{}, err
	}
	if c.Resolution != "" {
		return c, fmt.Errorf("conflict %s was resolved already (%s): %w", id, c.Resolution, models.ErrConflict)
	}
	if err := a.CanEditOwned(c.TenantID, c.OwnerID, c.TeamID); err != nil {
		return c, err
	}
	if action == ResolveRevert {
		r := s.reverterOf(c.Table)
		if r == nil {
			return c, fmt.Errorf("conflict %s names unknown table %s", id, c.Table)
		}
		if err := r.revert(ctx, a, c); err != nil {
			return c, err
		}
	}
	return s.Conflicts.Mutate(ctx, a, id, func(rec *models.Conflict) error {
		if rec.Resolution != "" {
			return fmt.Errorf("conflict %s was resolved already: %w", id, models.ErrConflict)
		}
		at := s.now().UTC()
		rec.Resolution, rec.ResolvedBy, rec.ResolvedAt = action, a.UserID, &at
		return nil
	})
}

// reverter restores the value a conflict's policy did not keep.
type reverter interface {
	Collection() string
	revert(ctx context.Context, a models.Actor, c models.Conflict) error
}

// reverterOf returns the collection a conflict on table is reverted in, or
// nil. Conflicts are the server's alone: no conflict names one.
func (s *Service) reverterOf(table string) reverter {
	for _, r := range []reverter{s.Customers, s.Contacts, s.Interactions, s.Tasks, s.Orders,
		s.Payments, s.Tickets, s.Surveys, s.LoyaltyEntries, s.Notifications} {
		if r.Collection() == table {
			return r
		}
	}
	return nil
}

// revert restores the value a conflict's policy did not keep, through the
// record's ordinary write path with the resolver's rights: only a field a
// device may write, never on an append-only collection, validated as any edit.
func (r *Records[R]) revert(ctx context.Context, a models.Actor, c models.Conflict) error {
	if c.Column == "*" {
		// An edit lost to a delete (kept: server) comes back with the edit;
		// a delete that beat an edit brings the record back as it was.
		var apply func(dst any) error
		if c.Kept == "server" {
			var values map[string]json.RawMessage
			if err := json.Unmarshal([]byte(c.DeviceValue), &values); err != nil {
				return fmt.Errorf("conflict %s holds no edit: %w", c.ID, err)
			}
			for col := range values {
				if !r.deviceWritable(col) {
					delete(values, col)
				}
			}
			apply = func(dst any) error { return decodeColumns(dst.(*R), values) }
		}
		_, err := r.restore(ctx, a, c.RecordID, apply)
		return err
	}
	if !r.deviceWritable(c.Column) {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "column",
			Message: fmt.Sprintf("%s.%s is written by the server alone; it cannot be reverted", r.coll, c.Column)}}}
	}
	_, err := r.Update(ctx, a, c.RecordID, 0, func(dst any) error {
		return decodeColumns(dst.(*R), map[string]json.RawMessage{c.Column: json.RawMessage(c.ServerValue)})
	})
	return err
}
