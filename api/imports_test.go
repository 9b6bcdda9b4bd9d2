package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/fieldcrm/fieldcrm/models"
)

// upload posts a spreadsheet to /v1/imports with the given form fields.
func (h *harness) upload(as account, fileName string, content []byte, fields map[string]string) response {
	h.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if fileName != "" {
		fw, _ := mw.CreateFormFile("file", fileName)
		_, _ = fw.Write(content)
	}
	_ = mw.Close()
	return h.do("POST", "/v1/imports", as.access, body.Bytes(), "Content-Type", mw.FormDataContentType())
}

// runImport uploads and waits for the import to finish, returning its record.
func (h *harness) runImport(as account, fileName string, content []byte, fields map[string]string) map[string]any {
	h.t.Helper()
	r := h.upload(as, fileName, content, fields)
	h.expect(r, 202, "import "+fileName)
	id := r.json(h.t)["id"].(string)
	if r.header.Get("Location") != "/v1/imports/"+id {
		h.t.Fatalf("Location %q", r.header.Get("Location"))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		im := h.call("GET", "/v1/imports/"+id, as, nil, 200)
		if im["state"] != "running" {
			if im["state"] != "done" {
				h.t.Fatalf("import ended %v: %v", im["state"], im["error"])
			}
			return im
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("import still running: %v", im)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counts(im map[string]any) string {
	return fmt.Sprintf("total %v created %v merged %v skipped %v failed %v", im["total"], im["created"], im["merged"], im["skipped"], im["failed"])
}

func gbk(t *testing.T, s string) []byte {
	out, err := simplifiedchinese.GBK.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// messyCSV is what a Chinese Excel export of an old CRM looks like: GBK,
// Chinese headers, phones and dates in every format, a bad row or three, a
// duplicate inside the file and one of a customer already in fieldcrm.
const messyCSV = "客户编号,客户名称,类型,手机,邮箱,生日,阶段,微信,备注\r\n" +
	"OLD-001,王小明,个人,138 0013 8000,xm@example.cn,1990年3月7日,潜在客户,wx001,老客户\r\n" +
	"OLD-002,Acme Pumps,公司,(020) 8888 6666,sales@acme.cn,,成交客户,,\r\n" +
	"OLD-003,坏号码,公司,12,not-an-email,,,,\r\n" +
	"OLD-004,王小明（重复）,个人,13800138000,,,,,\r\n" +
	"OLD-005,Existing Co,公司,,old@exist.cn,,,,\r\n" +
	",,公司,139 0013 9000,,,,,\r\n" +
	"OLD-007,Stage Co,公司,,,,weird,,\r\n" +
	"\r\n"

func customerCount(t *testing.T, h *harness, as account) int {
	return len(h.call("GET", "/v1/customers?limit=200", as, nil, 200)["data"].([]any))
}

func TestImportMessyChineseSpreadsheet(t *testing.T) {
	w := newWorld(t)
	h := w.h
	h.call("PATCH", "/v1/settings", w.admin, map[string]any{"custom_fields": []any{
		map[string]any{"key": "wechat", "label": "微信", "type": "text"}}}, 200)
	h.newCustomer(w.r1, map[string]any{"name": "Existing Co", "kind": "company", "emails": []any{map[string]any{"label": "work", "address": "old@exist.cn"}}})
	file := gbk(t, messyCSV)

	// A dry run says what would happen and writes nothing.
	before := customerCount(t, h, w.r1)
	dry := h.runImport(w.r1, "客户.csv", file, map[string]string{"dry_run": "true"})
	if got := counts(dry); got != "total 7 created 2 merged 0 skipped 2 failed 3" || dry["encoding"] != "gb18030" {
		t.Fatalf("dry run: %s (%v)", got, dry["encoding"])
	}
	if fmt.Sprint(dry["unmapped"]) != "[备注]" {
		t.Errorf("unmapped columns %v", dry["unmapped"])
	}
	if n := customerCount(t, h, w.r1); n != before {
		t.Fatalf("a dry run created %d customers", n-before)
	}

	im := h.runImport(w.r1, "客户.csv", file, nil)
	if got := counts(im); got != "total 7 created 2 merged 0 skipped 2 failed 3" {
		t.Fatalf("import: %s", got)
	}
	page := h.call("GET", "/v1/customers?q=王小明", w.r1, nil, 200)["data"].([]any)
	if len(page) != 1 {
		t.Fatalf("王小明 %d times", len(page))
	}
	c := page[0].(map[string]any)
	if c["external_ref"] != "OLD-001" || c["number"] == "" || c["birth_date"] != "1990-03-07" || c["stage"] != "prospect" ||
		c["phones"].([]any)[0].(map[string]any)["number"] != "+8613800138000" || c["custom_fields"].(map[string]any)["wechat"] != "wx001" || c["kind"] != "person" {
		t.Fatalf("imported customer %v", c)
	}

	// The report: each failed cell with its line, column and reason.
	var failed []string
	for _, f := range im["failures"].([]any) {
		f := f.(map[string]any)
		failed = append(failed, fmt.Sprintf("%v %v", f["line"], f["column"]))
	}
	if got := strings.Join(failed, ", "); got != "4 手机, 4 邮箱, 7 客户名称, 8 阶段" {
		t.Fatalf("failures %s", got)
	}
	r := h.do("GET", "/v1/imports/"+im["id"].(string)+"/failures", w.r1.access, nil)
	h.expect(r, 200, "failures CSV")
	report := string(r.body)
	if !strings.HasPrefix(report, "\uFEFFline,column,value,reason") || !strings.Contains(report, "4,手机,12,") || !strings.Contains(report, "8,阶段,weird,") {
		t.Fatalf("failures CSV:\n%s", report)
	}

	// The same file again creates nothing.
	again := h.runImport(w.r1, "客户.csv", file, nil)
	if got := counts(again); got != "total 7 created 0 merged 0 skipped 4 failed 3" {
		t.Fatalf("second import: %s", got)
	}
	if n := customerCount(t, h, w.r1); n != before+2 {
		t.Fatalf("%d customers after importing twice, want %d", n, before+2)
	}

	// Someone else's import is not theirs to read; an admin may.
	h.call("GET", "/v1/imports/"+im["id"].(string), w.r2, nil, 404)
	h.call("GET", "/v1/imports/"+im["id"].(string)+"/failures", w.r2, nil, 404)
	h.call("GET", "/v1/imports/"+im["id"].(string), w.admin, nil, 200)
}

func xlsxFile(t *testing.T, rows [][]any) []byte {
	f := excelize.NewFile()
	for i, row := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportExcelMergesOrFlagsDuplicates(t *testing.T) {
	w := newWorld(t)
	h := w.h
	existing := h.newCustomer(w.r1, map[string]any{"name": "Existing Co", "kind": "company",
		"emails": []any{map[string]any{"label": "work", "address": "old@exist.cn"}}})["id"].(string)
	file := xlsxFile(t, [][]any{
		{"Name", "E-mail", "Phone number 2", "Industry", "Tags"},
		{"Existing Co", "old@exist.cn", "020 8888 6666", "Pumps", "vip; north"},
		{"Fresh Ltd", "hi@fresh.cn", "", "Valves", ""},
	})
	mapping := `{"columns": {"Phone number 2": "phones"}}`
	im := h.runImport(w.r1, "contacts.xlsx", file, map[string]string{"on_duplicate": "merge", "mapping": mapping})
	if got := counts(im); got != "total 2 created 1 merged 1 skipped 0 failed 0" || im["format"] != "xlsx" {
		t.Fatalf("merge import: %s", got)
	}
	c := h.call("GET", "/v1/customers/"+existing, w.r1, nil, 200)
	if c["industry"] != "Pumps" || len(c["phones"].([]any)) != 1 || fmt.Sprint(c["tags"]) != "[vip north]" {
		t.Fatalf("merged customer %v", c)
	}

	flagged := xlsxFile(t, [][]any{{"Name", "Email"}, {"Existing Again", "old@exist.cn"}})
	im = h.runImport(w.r1, "again.xlsx", flagged, map[string]string{"on_duplicate": "flag"})
	if got := counts(im); got != "total 1 created 1 merged 0 skipped 0 failed 0" {
		t.Fatalf("flag import: %s", got)
	}
	dups := h.call("GET", "/v1/duplicates", w.r1, nil, 200)["data"].([]any)
	if len(dups) != 1 || dups[0].(map[string]any)["name"] != "Existing Again" {
		t.Fatalf("flagged duplicates %v", dups)
	}
}

func TestImportRefusesWhatItCannotRead(t *testing.T) {
	w := newWorld(t)
	h := w.h
	good := []byte("Name,Mobile\nA,13800138000\n")
	cases := []struct {
		name, file string
		content    []byte
		fields     map[string]string
		want       string
	}{
		{"no file", "", nil, nil, "file"},
		{"not a spreadsheet name", "data.pdf", good, nil, "file"},
		{"not an xlsx inside", "data.xlsx", []byte("hello"), nil, "file"},
		{"empty", "empty.csv", []byte(""), nil, "file"},
		{"no name column", "x.csv", []byte("Mobile,Email\n1,2\n"), nil, "mapping"},
		{"bad duplicate mode", "x.csv", good, map[string]string{"on_duplicate": "maybe"}, "on_duplicate"},
		{"bad dry run", "x.csv", good, map[string]string{"dry_run": "perhaps"}, "dry_run"},
		{"mapping not JSON", "x.csv", good, map[string]string{"mapping": "{"}, "mapping"},
		{"mapping to no field", "x.csv", good, map[string]string{"mapping": `{"columns": {"Mobile": "shoe_size"}}`}, "mapping.columns.Mobile"},
		{"mapping to no custom field", "x.csv", good, map[string]string{"mapping": `{"columns": {"Mobile": "custom:nope"}}`}, "mapping.columns.Mobile"},
		{"mapping of no column", "x.csv", good, map[string]string{"mapping": `{"columns": {"Fax": "phones"}}`}, "mapping.columns.Fax"},
		{"two names", "x.csv", []byte("Name,客户名称\nA,B\n"), nil, "mapping.columns.客户名称"},
		{"no such kind", "x.csv", good, map[string]string{"kind": "widgets"}, "kind"},
		{"payments without amounts", "x.csv", []byte("订单号,付款日期\nSO-1,2026-01-01\n"), map[string]string{"kind": "payments"}, "mapping"},
		{"contacts without their customer", "x.csv", []byte("联系人\n张伟\n"), map[string]string{"kind": "contacts"}, "mapping"},
		{"orders mapped to a customer field", "x.csv", []byte("客户,金额\nX,1\n"), map[string]string{"kind": "orders",
			"mapping": `{"columns": {"客户": "credit_limit"}}`}, "mapping.columns.客户"},
		{"orders mapped to a custom field", "x.csv", []byte("客户,金额\nX,1\n"), map[string]string{"kind": "orders",
			"mapping": `{"columns": {"客户": "custom:wechat"}}`}, "mapping.columns.客户"},
	}
	for _, c := range cases {
		r := h.upload(w.r1, c.file, c.content, c.fields)
		h.expect(r, 422, c.name)
		if !strings.Contains(string(r.body), `"field":"`+c.want) {
			t.Errorf("%s: %s", c.name, r.body)
		}
	}
	h.call("GET", "/v1/imports/nosuchimport0000000", w.r1, nil, 404)
	if n := customerCount(t, h, w.r1); n != 0 {
		t.Fatalf("refused imports created %d customers", n)
	}
}

func TestAnExportImportsBackIntoAnotherTenant(t *testing.T) {
	w := newWorld(t)
	h := w.h
	h.newCustomer(w.r1, map[string]any{"name": "王小明", "kind": "person", "birth_date": "1990-03-07", "stage": "prospect",
		"phones": []any{map[string]any{"label": "mobile", "number": "138 0013 8000"}}, "tags": []string{"vip", "north"}})
	h.newCustomer(w.r1, map[string]any{"name": "Acme Pumps", "kind": "company", "region": "North",
		"emails": []any{map[string]any{"label": "work", "address": "sales@acme.cn"}}})
	for _, lang := range []string{"en", "zh"} {
		r := h.do("GET", "/v1/exports/customers?format=xlsx&sort=name&lang="+lang, w.admin.access, nil)
		h.expect(r, 200, "export")
		other := h.signup("Other "+lang, "admin-"+lang+"@other.test")
		im := h.runImport(other, "customers.xlsx", r.body, nil)
		if got := counts(im); got != "total 2 created 2 merged 0 skipped 0 failed 0" || len(im["unmapped"].([]any)) != 0 {
			t.Fatalf("%s: re-import %s, unmapped %v, failures %v", lang, got, im["unmapped"], im["failures"])
		}
		list := h.call("GET", "/v1/customers?sort=name", other, nil, 200)["data"].([]any)
		a, b := list[0].(map[string]any), list[1].(map[string]any)
		if b["name"] != "王小明" || b["birth_date"] != "1990-03-07" || b["stage"] != "prospect" || fmt.Sprint(b["tags"]) != "[vip north]" ||
			b["phones"].([]any)[0].(map[string]any)["number"] != "+8613800138000" || b["external_ref"] == "" {
			t.Errorf("%s: re-imported person %v", lang, b)
		}
		if a["name"] != "Acme Pumps" || a["region"] != "North" || a["emails"].([]any)[0].(map[string]any)["address"] != "sales@acme.cn" {
			t.Errorf("%s: re-imported company %v", lang, a)
		}
	}
}

// TestImportFailuresFileDefusesFormulas: the failed cells of an import are
// written back as text a spreadsheet does not run.
func TestImportFailuresFileDefusesFormulas(t *testing.T) {
	w := newWorld(t)
	h := w.h
	file := "Name,Mobile,Email\r\n" +
		"Evil Co,\"=HYPERLINK(\"\"http://evil.test\"\",\"\"Click\"\")\",\"+cmd|' /C calc'!A0\"\r\n" +
		"Sum Co,+1+1,@SUM(1+1)\r\n"
	im := h.runImport(w.r1, "customers.csv", []byte(file), nil)
	if im["failed"] != float64(2) {
		t.Fatalf("import %s %v", counts(im), im["failures"])
	}
	r := h.do("GET", "/v1/imports/"+im["id"].(string)+"/failures", w.r1.access, nil)
	h.expect(r, 200, "failures CSV")
	rows, err := csv.NewReader(bytes.NewReader(r.body[3:])).ReadAll()
	if err != nil || len(rows) < 5 {
		t.Fatalf("failures CSV %v:\n%s", err, r.body)
	}
	values := map[string]bool{}
	for _, row := range rows[1:] {
		values[row[2]] = true
		for _, cell := range row {
			if c := strings.TrimLeft(cell, " "); c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
				t.Errorf("formula cell %q in the failures file", cell)
			}
		}
	}
	for _, v := range []string{`'=HYPERLINK("http://evil.test","Click")`, "'+cmd|' /C calc'!A0", "'+1+1", "'@SUM(1+1)"} {
		if !values[v] {
			t.Errorf("no failed value %q in %v", v, rows)
		}
	}
}

func TestAnImportWhoseServerStoppedReadsInterrupted(t *testing.T) {
	w := newWorld(t)
	h := w.h
	r := h.upload(w.r1, "x.csv", []byte("Name\nA\n"), map[string]string{"dry_run": "true"})
	h.expect(r, 202, "import")
	id := r.json(t)["id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for h.call("GET", "/v1/imports/"+id, w.r1, nil, 200)["state"] == "running" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// A record left running, its replica gone: three minutes without progress.
	im, err := h.crm.Import(context.Background(), models.Actor{TenantID: w.admin.tenant, Role: models.RoleAdmin}, id)
	if err != nil {
		t.Fatal(err)
	}
	im.State, im.UpdatedAt, im.FinishedAt = "running", h.clock.Now().Add(-3*time.Minute), nil
	if err := h.crm.SaveImport(context.Background(), im); err != nil {
		t.Fatal(err)
	}
	got := h.call("GET", "/v1/imports/"+id, h.login(w.r1.email, w.r1.password), nil, 200)
	if got["state"] != "interrupted" || !strings.Contains(got["error"].(string), "import the same file again") {
		t.Fatalf("stale import %v %v", got["state"], got["error"])
	}
}
