package crm

import (
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

// OpenConflict turns a conflict's sealed values back into their JSON, in
// place, for the server's own use (reverting it). Never show the result to
// anyone but an admin.
func (s *Service) OpenConflict(c *models.Conflict) error {
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
	if err := s.OpenConflict(c); err != nil {
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
