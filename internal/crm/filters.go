package crm

import (
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldcrm/fieldcrm/models"
)

// filter turns one query parameter of a list into store conditions. Its
// description (doc, kind, enum) is what the OpenAPI document says of the
// parameter (Records.ListParams), so the two cannot differ.
type filter struct {
	conds func(raw string, st models.Settings) ([]models.Cond, error)
	doc   string
	kind  ParamKind
	// enum lists the values an equals filter accepts; nil accepts any.
	enum []string
}

// ParamKind is the shape of a list parameter's value.
type ParamKind int

// Kinds of list parameters.
const (
	// ParamText is free text.
	ParamText ParamKind = iota
	// ParamList is one value or several separated by commas.
	ParamList
	// ParamBool is true or false.
	ParamBool
	// ParamTime is a time (RFC 3339) or a date (YYYY-MM-DD).
	ParamTime
	// ParamDate is a date (YYYY-MM-DD).
	ParamDate
)

// ListParam describes one filter of a list.
type ListParam struct {
	Name string
	Doc  string
	Kind ParamKind
	// Enum lists the values accepted (each of a ParamList); nil accepts any.
	Enum []string
}

// equals matches a stored field exactly; several values may be given comma-separated.
func equals(field string, allowed ...string) filter {
	return filter{doc: "one value or several separated by commas", kind: ParamList, enum: allowed, conds: func(raw string, _ models.Settings) ([]models.Cond, error) {
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
	return filter{doc: "text to find, case-insensitive", kind: ParamText, conds: func(raw string, _ models.Settings) ([]models.Cond, error) {
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
	kind, doc := ParamTime, "a time (RFC 3339) or a date (YYYY-MM-DD)"
	if dateOnly {
		kind, doc = ParamDate, "a date (YYYY-MM-DD)"
	}
	if op == models.OpLt {
		doc += "; the records before it"
	} else {
		doc += "; the records at or after it"
	}
	return filter{doc: doc + " (" + field + ")", kind: kind, conds: func(raw string, _ models.Settings) ([]models.Cond, error) {
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
	return filter{doc: "true or false", kind: ParamBool, conds: func(raw string, _ models.Settings) ([]models.Cond, error) {
		switch raw {
		case "true":
			return []models.Cond{{Field: field, Op: models.OpNe, Value: nil}}, nil
		case "false":
			return []models.Cond{{Field: field, Op: models.OpMissing}}, nil
		}
		return nil, errors.New("must be true or false")
	}}
}

var childFilters = map[string]filter{"customer_id": described(equals("customer_id"), "the customer's id")}

// described gives f a description of what it matches, before the shape of its value.
func described(f filter, what string) filter {
	f.doc = what + ": " + f.doc
	return f
}

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

// ListParams describes the filters of the collection's list, sorted by name.
// A nil Records (a Service that was not built by New) has none.
func (r *Records[R]) ListParams() []ListParam {
	if r == nil {
		return nil
	}
	out := make([]ListParam, 0, len(r.h.filters))
	for name, f := range r.h.filters {
		out = append(out, ListParam{Name: name, Doc: f.doc, Kind: f.kind, Enum: f.enum})
	}
	slices.SortFunc(out, func(a, b ListParam) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SortNames are the sort names the collection's list accepts, ascending
// (each also descending with - in front), sorted.
func (r *Records[R]) SortNames() []string {
	if r == nil {
		return nil
	}
	names := make([]string, 0, len(r.h.sorts))
	for k := range r.h.sorts {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
