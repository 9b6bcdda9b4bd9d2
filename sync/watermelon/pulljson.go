package watermelon

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/fieldcrm/fieldcrm/internal/jsontext"
)

// AppendJSON writes the pull's body to dst exactly as encoding/json writes
// it (keys in order, strings escaped the same way), without reflection: a
// page holds thousands of rows, each a map, and encoding/json sorted and
// reflected over every one of them (a seventh of a first pull's time).
func (r PullResult) AppendJSON(dst []byte) ([]byte, error) {
	var err error
	dst = append(dst, `{"changes":`...)
	if r.Changes == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '{')
		for i, name := range slices.Sorted(maps.Keys(r.Changes)) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsontext.AppendString(dst, name)
			dst = append(dst, ':')
			if dst, err = r.Changes[name].appendJSON(dst); err != nil {
				return nil, fmt.Errorf("table %s: %w", name, err)
			}
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp, 10)
	dst = append(dst, `,"has_more":`...)
	dst = strconv.AppendBool(dst, r.HasMore)
	return append(dst, '}'), nil
}

func (t *TableChanges) appendJSON(dst []byte) ([]byte, error) {
	if t == nil {
		return append(dst, "null"...), nil
	}
	var err error
	dst = append(dst, `{"created":`...)
	if dst, err = appendRows(dst, t.Created); err != nil {
		return nil, err
	}
	dst = append(dst, `,"updated":`...)
	if dst, err = appendRows(dst, t.Updated); err != nil {
		return nil, err
	}
	dst = append(dst, `,"deleted":`...)
	if t.Deleted == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, id := range t.Deleted {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsontext.AppendString(dst, id)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

// appendRows writes rows, each an object with its keys in order. The rows
// of a table have the same columns, so their keys are sorted once.
func appendRows(dst []byte, rows []map[string]any) ([]byte, error) {
	if rows == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '[')
	var keys []string
	var err error
	for i, row := range rows {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, keys, err = appendRow(dst, row, keys); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
	}
	return append(dst, ']'), nil
}

// appendRow writes one row as an object with its keys in order. keys are
// the sorted keys of the row before (nil for the first); it returns this
// row's, sorted again only when they differ.
func appendRow(dst []byte, row map[string]any, keys []string) ([]byte, []string, error) {
	if row == nil {
		return append(dst, "null"...), keys, nil
	}
	if !sameKeys(row, keys) {
		keys = slices.Sorted(maps.Keys(row))
	}
	dst = append(dst, '{')
	var err error
	for j, k := range keys {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = jsontext.AppendString(dst, k)
		dst = append(dst, ':')
		if dst, err = jsontext.AppendValue(dst, row[k]); err != nil {
			return nil, nil, fmt.Errorf("column %s: %w", k, err)
		}
	}
	return append(dst, '}'), keys, nil
}

// sameKeys tells whether row has exactly the keys keys.
func sameKeys(row map[string]any, keys []string) bool {
	if len(row) != len(keys) {
		return false
	}
	for _, k := range keys {
		if _, ok := row[k]; !ok {
			return false
		}
	}
	return true
}
