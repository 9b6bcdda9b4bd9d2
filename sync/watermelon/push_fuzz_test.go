package watermelon

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/fieldcrm/fieldcrm/models"
)

// A pushed row that checkRow lets through is turned into the record's JSON
// without a panic; what fails there is the row's own validation error (the
// row is rejected alone), and every column's JSON is valid JSON. (What the
// CRM does with those values is fuzzed there: FuzzDecodeColumns.)
func FuzzPushRowColumns(f *testing.F) {
	for _, s := range []string{
		`{"id":"c1","name":"张伟","kind":"person","phones":"[{\"number\":\"+8613800138000\"}]","_status":"created","_changed":""}`,
		`{"id":"c1","name":"x","updated_at":1e300}`,
		`{"id":"c1","tags":"{}","created_at":-62135596800001}`,
		`{"id":"c1","_changed":"name,,nope","name":null}`,
		`{"id":"i1","customer_id":"c1","channel":"visit","occurred_at":1767225600000,"summary":"s"}`,
		`{"id":"","x":1}`,
	} {
		f.Add(s)
	}
	tables := [][]Column{columnsOf(&models.Customer{}), columnsOf(&models.Interaction{})}
	f.Fuzz(func(t *testing.T, rowJSON string) {
		var row map[string]any
		if json.Unmarshal([]byte(rowJSON), &row) != nil {
			return
		}
		for _, cols := range tables {
			v := &models.ValidationError{}
			checkRow(v, "row", row, cols)
			if v.Err() != nil {
				continue
			}
			values, err := writable(row, cols)
			if err != nil {
				var ve *models.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("writable(%s): %v is not the row's validation error", rowJSON, err)
				}
				continue
			}
			for name, raw := range values {
				if !json.Valid(raw) {
					t.Fatalf("writable(%s): column %s is %s, not JSON", rowJSON, name, raw)
				}
			}
		}
	})
}

// Any migration object the pull accepts names tables and columns without a
// panic.
func FuzzCheckMigration(f *testing.F) {
	for _, s := range []string{
		`{"from":1,"tables":["customers"],"columns":[{"table":"tasks","columns":["due_at"]}]}`,
		`{"from":0}`, `{"from":-1,"tables":null}`, `{"columns":[{"table":"","columns":null}]}`, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var m Migration
		if json.Unmarshal([]byte(raw), &m) != nil {
			return
		}
		if err := CheckMigration(m); err != nil {
			var ve *models.ValidationError
			if !errors.As(err, &ve) || m.From >= 1 {
				t.Fatalf("CheckMigration(%s) = %v", raw, err)
			}
			return
		}
		if m.From < 1 {
			t.Fatalf("CheckMigration(%s) accepted from %d", raw, m.From)
		}
		for _, name := range []string{"customers", "tasks", ""} {
			_ = m.names(name)
		}
	})
}
