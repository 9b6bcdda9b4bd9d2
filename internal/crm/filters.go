package crm

import (
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldcrm/fieldcrm/models"
)

// filter turns one query parameter of a list into store conditions.
type filter struct {
	conds func(raw string, st models.Settings) ([]models.Cond, error)
	doc   string
}

// equals matches a stored field exactly; several values may be given comma-separated.
func equals(field string, allowed ...string) filter {
	return filter{doc: "one value or several separated by commas", conds: func(raw string, _ models.Settings) ([]models.Cond, error) {
		values := strings.Split(raw, ",")
		for _, v := range values {
			if len(allowed) > 0 && !slices.Contains(allowed, v) {
				return nil, errors.New("must be one of " + strings.Join(allowed, ", "))
			}
			if v == "" || len(v) > 200 {
				return nil, errors.New("must not be empty")
			}
		}
		if len(values) == 1 {
			return []models.Cond{{Field: field, Op: models.OpEq, Value: values[0]}}, nil
		}
		return []models.Cond{{Field: field, Op: models.OpIn, Value: values}}, nil
	}}
}

// contains matches a case-insensitive substring of a text field.
func contains(field string) filter {
	return filter{doc: "text to find, case-insensitive", conds: func(raw string, _ models.Settings) ([]models.Cond, error) {
		raw = strings.TrimSpace(raw)
		if !utf8.ValidString(raw) {
			return nil, errors.New("must be UTF-8 text")
		}
		if raw == "" || len(raw) > 200 {
			return nil, errors.New("must be 1 to 200 characters")
		}
		return []models.Cond{{Field: field, Op: models.OpContains, Value: raw}}, nil
	}}
}

// since and until bound a time field (RFC 3339) or a date field (YYYY-MM-DD).
func since(field string, dateOnly bool) filter { return bound(field, models.OpGte, dateOnly) }
func until(field string, dateOnly bool) filter { return bound(field, models.OpLt, dateOnly) }

func bound(field string, op models.Op, dateOnly bool) filter {
	return filter{doc: "a time (RFC 3339) or date", conds: func(raw string, _ models.Settings) ([]models.Cond, error) {
		if dateOnly {
			d, err := models.NormalizeDate(raw)
			if err != nil {
				return nil, err
			}
			return []models.Cond{{Field: field, Op: op, Value: d}}, nil
		}
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			d, derr := time.Parse(time.DateOnly, raw)
			if derr != nil {
				return nil, errors.New("must be a time such as 2026-01-05T09:00:00+08:00 or a date such as 2026-01-05")
			}
			t = d
		}
		return []models.Cond{{Field: field, Op: op, Value: t.UTC()}}, nil
	}}
}

// flag matches records where field is set (true) or not (false).
func flag(field string) filter {
	return filter{doc: "true or false", conds: func(raw string, _ models.Settings) ([]models.Cond, error) {
		switch raw {
		case "true":
			return []models.Cond{{Field: field, Op: models.OpNe, Value: nil}}, nil
		case "false":
			return []models.Cond{{Field: field, Op: models.OpMissing}}, nil
		}
		return nil, errors.New("must be true or false")
	}}
}

var childFilters = map[string]filter{"customer_id": equals("customer_id")}

// withChild adds the customer_id filter of child collections to m.
func withChild(m map[string]filter) map[string]filter {
	for k, v := range childFilters {
		m[k] = v
	}
	return m
}

func filterNames(m map[string]filter) string { return keys(m) }
func sortNames(m map[string]string) string   { return keys(m) }

func keys[V any](m map[string]V) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
