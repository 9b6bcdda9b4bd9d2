package api_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// exportRows parses a CSV export (after its byte order mark) into rows.
func exportRows(t *testing.T, r response) [][]string {
	t.Helper()
	if !bytes.HasPrefix(r.body, []byte("\uFEFF")) {
		t.Fatalf("CSV export without a byte order mark: %q", r.body[:min(20, len(r.body))])
	}
	rows, err := csv.NewReader(bytes.NewReader(r.body[3:])).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v\n%s", err, r.body)
	}
	return rows
}

// column returns the values of the column with the given header.
func column(t *testing.T, rows [][]string, header string) []string {
	t.Helper()
	i := -1
	for j, h := range rows[0] {
		if h == header {
			i = j
		}
	}
	if i < 0 {
		t.Fatalf("no column %q in %v", header, rows[0])
	}
	var out []string
	for _, row := range rows[1:] {
		out = append(out, row[i])
	}
	return out
}

func exportEntries(t *testing.T, h *harness, admin account) int {
	n := 0
	for _, e := range h.call("GET", "/v1/audit?limit=200", admin, nil, 200)["data"].([]any) {
		if e.(map[string]any)["collection"] == "exports" {
			n++
		}
	}
	return n
}

func TestExportCustomersAsCSVAndExcel(t *testing.T) {
	w := newWorld(t)
	h := w.h
	h.newCustomer(w.r1, map[string]any{"name": "王小明", "kind": "person", "stage": "customer", "birth_date": "1990-03-07",
		"phones": []any{map[string]any{"label": "mobile", "number": "138 0013 8000"}},
		"emails": []any{map[string]any{"label": "work", "address": "xiaoming@example.cn"}}, "national_id": "110101199003074514"})
	h.newCustomer(w.r1, map[string]any{"name": "=HYPERLINK(\"http://evil\")", "kind": "company", "stage": "lead"})
	h.newCustomer(w.r1, map[string]any{"name": "Acme Pumps", "kind": "company", "stage": "customer"})
	h.newCustomer(w.r2, map[string]any{"name": "South Only", "kind": "company"})

	// A rep: their own customers, contact details masked, the export audited.
	r := h.do("GET", "/v1/exports/customers?format=csv", w.r1.access, nil)
	h.expect(r, 200, "rep export")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || r.header.Get("X-Export-ID") == "" ||
		!strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("headers %v", r.header)
	}
	rows := exportRows(t, r)
	names := strings.Join(column(t, rows, "Name"), "|")
	if len(rows) != 4 || strings.Contains(names, "South Only") {
		t.Fatalf("rep export rows %v", rows)
	}
	if !strings.Contains(names, `'=HYPERLINK`) {
		t.Errorf("a formula in a name was not defused: %s", names)
	}
	joined := strings.Join(rows[1], ",") + strings.Join(rows[2], ",") + strings.Join(rows[3], ",")
	for _, secret := range []string{"+8613800138000", "xiaoming@example.cn", "110101199003074514", "1990-03-07"} {
		if strings.Contains(joined, secret) {
			t.Errorf("a rep's export shows %q", secret)
		}
	}
	if !strings.Contains(joined, "+86138****8000") || !strings.Contains(joined, "x***@example.cn") || !strings.Contains(joined, "1990-**-**") {
		t.Errorf("masked values missing: %v", rows)
	}

	// An admin: everyone's customers, in clear, filtered and with Chinese headers.
	r = h.do("GET", "/v1/exports/customers?format=csv&lang=zh&stage=customer&sort=name", w.admin.access, nil)
	h.expect(r, 200, "admin export")
	rows = exportRows(t, r)
	if got := strings.Join(column(t, rows, "客户名称"), "|"); got != "Acme Pumps|王小明" {
		t.Fatalf("filtered, sorted export: %q", got)
	}
	if phones := column(t, rows, "手机"); phones[1] != "+8613800138000" {
		t.Errorf("admin export phones %v", phones)
	}
	if ids := column(t, rows, "身份证号"); ids[1] != "110101199003074514" {
		t.Errorf("admin export ID numbers %v", ids)
	}

	// Excel.
	r = h.do("GET", "/v1/exports/customers?format=xlsx", w.admin.access, nil)
	h.expect(r, 200, "xlsx export")
	f, err := excelize.OpenReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("not an Excel file: %v", err)
	}
	sheet, err := f.GetRows("Sheet1")
	if err != nil || len(sheet) != 5 || sheet[0][1] != "Name" {
		t.Fatalf("xlsx rows %v %v", sheet, err)
	}
	if got := exportEntries(t, h, w.admin); got != 3 {
		t.Fatalf("%d exports in the audit log, want 3", got)
	}

	// Bad requests: a problem document, nothing sent, nothing audited.
	for _, q := range []string{"format=pdf", "lang=fr", "no_such_filter=1", "stage=nonsense", "sort=secret"} {
		r := h.do("GET", "/v1/exports/customers?"+q, w.r1.access, nil)
		h.expect(r, 422, q)
		if !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s: content type %q", q, r.header.Get("Content-Type"))
		}
	}
	h.expect(h.do("GET", "/v1/exports/customers", "", nil), 401, "anonymous export")
	if got := exportEntries(t, h, w.admin); got != 3 {
		t.Fatalf("refused exports were audited: %d entries", got)
	}
}

// TestExportDefusesFormulasAndKeepsPhoneNumbers: formula cells come out as
// text in CSV and Excel, in every column; a phone number stays readable; and
// the export imports back with the values it had.
func TestExportDefusesFormulasAndKeepsPhoneNumbers(t *testing.T) {
	w := newWorld(t)
	h := w.h
	h.newCustomer(w.r1, map[string]any{"name": `=HYPERLINK("http://evil.test","Click")`, "kind": "person", "title": "+1*2",
		"industry": "+cmd|' /C calc'!A0", "product_needs": "+1+1",
		"phones": []any{map[string]any{"label": "mobile", "number": "138 0013 8000"}}})
	want := map[string]string{"Name": `'=HYPERLINK("http://evil.test","Click")`, "Job Title": "'+1*2",
		"Industry": "'+cmd|' /C calc'!A0", "Product Needs": "'+1+1", "Mobile": "+8613800138000"}

	r := h.do("GET", "/v1/exports/customers?format=csv", w.admin.access, nil)
	h.expect(r, 200, "csv export")
	rows := exportRows(t, r)
	for header, cell := range want {
		if got := column(t, rows, header)[0]; got != cell {
			t.Errorf("csv %s: %q, want %q", header, got, cell)
		}
	}

	r = h.do("GET", "/v1/exports/customers?format=xlsx", w.admin.access, nil)
	h.expect(r, 200, "xlsx export")
	f, err := excelize.OpenReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	sheet, err := f.GetRows("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	for header, cell := range want {
		if got := column(t, sheet, header)[0]; got != cell {
			t.Errorf("xlsx %s: %q, want %q", header, got, cell)
		}
	}

	other := h.signup("Other", "admin@other.test")
	if im := h.runImport(other, "customers.xlsx", r.body, nil); counts(im) != "total 1 created 1 merged 0 skipped 0 failed 0" {
		t.Fatalf("re-import %s %v", counts(im), im["failures"])
	}
	c := h.call("GET", "/v1/customers", other, nil, 200)["data"].([]any)[0].(map[string]any)
	if c["name"] != `=HYPERLINK("http://evil.test","Click")` || c["product_needs"] != "+1+1" || c["title"] != "+1*2" {
		t.Errorf("re-imported %v", c)
	}
}
