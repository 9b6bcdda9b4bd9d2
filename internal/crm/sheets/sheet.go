package sheets

import (
	"errors"
	"io"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// Sheet is a spreadsheet opened for an import: its header read and its
// columns mapped onto the fields of one kind of record. A file that cannot be
// imported at all (not a spreadsheet, empty, no column for a required field,
// a bad mapping) fails in Open, before anything is recorded.
type Sheet struct {
	path, format, encoding string
	kind                   kind
	plan                   columnPlan
	custom                 []models.CustomFieldDef
	rows                   int
}

// Open reads the header of the file at path (fileName's extension gives the
// format) for an import of kindName (one of crm.ImportKinds), mapping its
// columns by their headers and by m, and counts its rows.
func Open(path, fileName, kindName string, m Mapping, custom []models.CustomFieldDef) (*Sheet, error) {
	k, ok := kinds[kindName]
	if !ok {
		return nil, &models.ValidationError{Fields: []models.FieldError{{Field: "kind",
			Message: "must be one of " + strings.Join(crm.ImportKinds, ", ")}}}
	}
	format, err := FormatOf(fileName)
	if err != nil {
		return nil, fileError(err)
	}
	rows, encoding, err := openRows(path, format)
	if err != nil {
		return nil, fileError(err)
	}
	defer rows.close()
	var headers []string
	for headers == nil {
		_, cells, err := rows.next()
		if errors.Is(err, io.EOF) {
			return nil, fileError(errors.New("the file is empty"))
		}
		if err != nil {
			return nil, fileError(err)
		}
		if !blank(cells) {
			headers = cells
		}
	}
	p, err := plan(k, headers, m, custom)
	if err != nil {
		return nil, err
	}
	total, err := countRows(path, format)
	if err != nil {
		return nil, fileError(err)
	}
	return &Sheet{path: path, format: format, encoding: encoding, kind: k, plan: p, custom: custom, rows: total}, nil
}

func fileError(err error) error {
	return &models.ValidationError{Fields: []models.FieldError{{Field: "file", Message: err.Error()}}}
}

// Format is the file's format: CSV or XLSX.
func (s *Sheet) Format() string { return s.format }

// Encoding is a CSV file's text encoding ("" for XLSX).
func (s *Sheet) Encoding() string { return s.encoding }

// Rows is how many rows the file has, the header included, blank rows not.
func (s *Sheet) Rows() int { return s.rows }

// Unmapped lists the headers of the columns the import leaves out.
func (s *Sheet) Unmapped() []string {
	if u := s.plan.unmapped(); u != nil {
		return u
	}
	return []string{}
}

// Read calls fn with every data row after the header, blank rows left out,
// in file order, with its line number. A row that cannot be read (a broken
// line) comes with its error, for the import to count as failed; an error
// that stops the reading, or fn's own, ends Read and is returned.
func (s *Sheet) Read(fn func(line int, cells []string, rowErr error) error) error {
	rows, _, err := openRows(s.path, s.format)
	if err != nil {
		return err
	}
	defer rows.close()
	header := true
	for {
		line, cells, err := rows.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if line == 0 {
				return err
			}
			if err := fn(line, nil, err); err != nil {
				return err
			}
			continue
		}
		if blank(cells) {
			continue
		}
		if header {
			header = false
			continue
		}
		if err := fn(line, cells, nil); err != nil {
			return err
		}
	}
}

// Customer reads a row of a customers import.
func (s *Sheet) Customer(cells []string) (models.Customer, error) {
	return s.plan.customer(cells, s.format == XLSX, s.custom)
}

// Record reads a row of a records import (contacts, interactions, orders,
// payments); times without a zone are in loc.
func (s *Sheet) Record(cells []string, st models.Settings, loc *time.Location) (crm.RecordRow, error) {
	return s.plan.record(s.kind, cells, s.format == XLSX, st, loc)
}

// RowKey is what a row's record is known by: its number in the old system
// when it has one (a payment's within its order), else its content, so the
// same row imported twice is the same record (see crm.ImportedID).
func (s *Sheet) RowKey(raw []string) string {
	c := s.plan.cells(raw, false)
	ref := ""
	if s.kind.refField != "" {
		ref = c.get(s.kind.refField)
	}
	switch {
	case ref != "" && s.kind.name == crm.ImportPayments:
		return "ref:" + c.get("order_no") + "/" + ref
	case ref != "":
		return "ref:" + ref
	}
	var parts []string
	for i, t := range s.plan.targets {
		if t != "" && t != Ignore && i < len(raw) {
			parts = append(parts, t+"="+strings.TrimSpace(raw[i]))
		}
	}
	return "row:" + strings.Join(parts, "\x1f")
}

// Cell names the column a record's field came from (field as the CRM names
// it in a validation error) and the row's value there, for a failed row's
// report; both "" when no column maps to it.
func (s *Sheet) Cell(cells []string, field string) (column, value string) {
	column = s.plan.columnOf(field, s.kind.fieldColumns)
	for i, h := range s.plan.headers {
		if h == column && i < len(cells) {
			return column, cells[i]
		}
	}
	return column, ""
}
