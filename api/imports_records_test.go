package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// importedRows lists an import's failures as "line column" pairs.
func failedCells(im map[string]any) string {
	var failed []string
	for _, f := range im["failures"].([]any) {
		f := f.(map[string]any)
		failed = append(failed, fmt.Sprintf("%v %v", f["line"], f["column"]))
	}
	return strings.Join(failed, ", ")
}

func recordsOf(h *harness, as account, path string) []map[string]any {
	var out []map[string]any
	for _, r := range h.call("GET", path, as, nil, 200)["data"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// TestImportContactsInteractionsOrdersAndPayments brings an old CRM's
// records in after its customers: each kind names its customer (or order)
// the way the old system's export does, and bad rows fail alone.
func TestImportContactsInteractionsOrdersAndPayments(t *testing.T) {
	w := newWorld(t)
	h := w.h
	existing := h.newCustomer(w.r1, map[string]any{"name": "Existing Co", "kind": "company", "company_name": "Existing Co"})
	h.runImport(w.r1, "customers.csv", []byte("客户编号,客户名称,类型\nOLD-001,王小明,个人\nOLD-002,Acme Pumps,公司\n"), nil)
	acme := recordsOf(h, w.r1, "/v1/customers?q=acme")[0]
	person := recordsOf(h, w.r1, "/v1/customers?q=王小明")[0]

	// Contacts, naming their customer by old reference, company name or number.
	contacts := "\uFEFF公司名称,联系人,职位,手机,邮箱,主联系人\n" +
		"OLD-002,张伟,采购经理,139 0013 9000,zw@acme.cn,是\n" +
		"Existing Co.,李娜,财务,,ln@exist.cn,否\n" +
		existing["number"].(string) + ",赵六,,,,\n" +
		"OLD-001,王五,,,,\n" + // a person has no contacts
		"NOPE-9,某人,,,,\n" +
		"OLD-002,,,,,\n" +
		"OLD-002,钱七,,,,也许\n"
	im := h.runImport(w.r1, "联系人.csv", []byte(contacts), map[string]string{"kind": "contacts"})
	if got := counts(im); got != "total 7 created 3 merged 0 skipped 0 failed 4" || im["kind"] != "contacts" {
		t.Fatalf("contacts: %s (%v)", got, im["kind"])
	}
	if got := failedCells(im); got != "5 公司名称, 6 公司名称, 7 联系人, 8 主联系人" {
		t.Fatalf("contact failures %s", got)
	}
	acmeContacts := recordsOf(h, w.r1, "/v1/contacts?customer_id="+acme["id"].(string))
	if len(acmeContacts) != 1 || acmeContacts[0]["name"] != "张伟" || acmeContacts[0]["is_primary"] != true ||
		acmeContacts[0]["phones"].([]any)[0].(map[string]any)["number"] != "+8613900139000" {
		t.Fatalf("Acme's contacts %v", acmeContacts)
	}
	if n := len(recordsOf(h, w.r1, "/v1/contacts?customer_id="+existing["id"].(string))); n != 2 {
		t.Fatalf("Existing Co has %d contacts, want 2 (by company name and by number)", n)
	}

	// Interactions from a workbook: a date cell as Excel keeps it (a serial
	// number), times with and without an offset, Chinese channel words.
	book := xlsxFile(t, [][]any{
		{"客户编号", "跟进方式", "跟进时间", "时长(分钟)", "跟进内容", "跟进人"},
		{"OLD-001", "电话", "2025-03-05T14:30:00+08:00", 12, "询价", "r1@a.test"},
		{"OLD-002", "上门拜访", 46086.5, "", "看样品", ""},
		{"OLD-002", "微信", "2025/3/6 9:05", "", "报价", "r2@a.test"}, // only admins log for others
		{"OLD-002", "飞鸽", "2025-03-07", "", "", ""},
		{"OLD-002", "电话", "昨天", "", "", ""},
	})
	im = h.runImport(w.r1, "跟进记录.xlsx", book, map[string]string{"kind": "interactions"})
	if got := counts(im); got != "total 5 created 2 merged 0 skipped 0 failed 3" {
		t.Fatalf("interactions: %s %v", got, im["failures"])
	}
	if got := failedCells(im); got != "4 , 5 跟进方式, 6 跟进时间" {
		t.Fatalf("interaction failures %s", got)
	}
	calls := recordsOf(h, w.r1, "/v1/interactions?customer_id="+person["id"].(string))
	if len(calls) != 1 || calls[0]["occurred_at"] != "2025-03-05T06:30:00Z" || calls[0]["channel"] != "phone" || calls[0]["duration_seconds"] != 720.0 {
		t.Fatalf("王小明's interactions %v", calls)
	}
	visits := recordsOf(h, w.r1, "/v1/interactions?customer_id="+acme["id"].(string))
	if len(visits) != 1 || visits[0]["occurred_at"] != "2026-03-05T12:00:00Z" || visits[0]["channel"] != "visit" {
		t.Fatalf("Acme's interactions %v", visits)
	}

	// Orders: a dry run first, then the import; amounts in yuan with
	// separators and symbols, a total without line detail.
	orders := "订单号,客户编号,下单日期,产品,数量,单价,金额,状态\n" +
		"SO-1,OLD-002,2026/3/1,水泵,2,\"1,250.00\",\"2,500.00\",已完成\n" +
		"SO-2,OLD-002,2026-03-10,,,,¥800,已确认\n" +
		"SO-3,OLD-002,2026-03-11,阀门,3,100,400,\n" +
		"SO-4,OLD-001,2026-03-12,阀门,1,12.345,,\n" +
		"SO-5,OLD-001,2026-02-30,阀门,1,10,,\n"
	dry := h.runImport(w.r1, "订单.csv", []byte(orders), map[string]string{"kind": "orders", "dry_run": "true"})
	if got := counts(dry); got != "total 5 created 2 merged 0 skipped 0 failed 3" {
		t.Fatalf("orders dry run: %s %v", got, dry["failures"])
	}
	if n := len(recordsOf(h, w.r1, "/v1/orders")); n != 0 {
		t.Fatalf("a dry run created %d orders", n)
	}
	im = h.runImport(w.r1, "订单.csv", []byte(orders), map[string]string{"kind": "orders"})
	if got := counts(im); got != "total 5 created 2 merged 0 skipped 0 failed 3" {
		t.Fatalf("orders: %s", got)
	}
	if got := failedCells(im); got != "4 金额, 5 单价, 6 下单日期" {
		t.Fatalf("order failures %s", got)
	}
	amounts := map[string]any{}
	for _, o := range recordsOf(h, w.r1, "/v1/orders?customer_id="+acme["id"].(string)) {
		amounts[o["ordered_on"].(string)] = o["amount"]
	}
	if fmt.Sprint(amounts) != "map[2026-03-01:250000 2026-03-10:80000]" {
		t.Fatalf("Acme's orders %v", amounts)
	}

	// Payments name their order by its old number; one may not exceed what
	// the order owes.
	payments := "订单号,付款日期,金额,付款方式,流水号\n" +
		"SO-1,2026-03-02,\"1,000\",银行转账,TX1\n" +
		"SO-1,2026-03-03,2000,微信,TX2\n" +
		"SO-9,2026-03-03,10,现金,TX3\n" +
		"SO-2,2026-03-15,800元,支付宝,TX4\n"
	im = h.runImport(w.r1, "回款.csv", []byte(payments), map[string]string{"kind": "payments"})
	if got := counts(im); got != "total 4 created 2 merged 0 skipped 0 failed 2" {
		t.Fatalf("payments: %s", got)
	}
	if got := failedCells(im); got != "3 金额, 4 订单号" {
		t.Fatalf("payment failures %s", got)
	}
	acme = h.call("GET", "/v1/customers/"+acme["id"].(string), w.r1, nil, 200)
	if fmt.Sprint(acme["balance"]) != "[map[amount:150000 currency:CNY]]" {
		t.Fatalf("Acme owes %v, want 1,500.00 CNY", acme["balance"])
	}

	// Every file again: nothing is created twice.
	for _, again := range []struct{ name, kind, file, want string }{
		{"联系人.csv", "contacts", contacts, "total 7 created 0 merged 0 skipped 3 failed 4"},
		{"订单.csv", "orders", orders, "total 5 created 0 merged 0 skipped 2 failed 3"},
		{"回款.csv", "payments", payments, "total 4 created 0 merged 0 skipped 2 failed 2"},
	} {
		if got := counts(h.runImport(w.r1, again.name, []byte(again.file), map[string]string{"kind": again.kind})); got != again.want {
			t.Errorf("%s again: %s", again.kind, got)
		}
	}
	again := h.runImport(w.r1, "跟进记录.xlsx", book, map[string]string{"kind": "interactions"})
	if got := counts(again); got != "total 5 created 0 merged 0 skipped 2 failed 3" {
		t.Errorf("interactions again: %s", got)
	}

	// An admin may log records for a rep, who must be able to edit the
	// customer (the team's manager may); another team's rep does not even
	// see it.
	im = h.runImport(w.admin, "跟进记录2.csv", []byte("客户编号,跟进方式,跟进时间,跟进人\nOLD-002,电话,2025-04-01 10:00,r1@a.test\nOLD-002,电话,2025-04-02 10:00,r2@a.test\n"+
		"OLD-002,电话,2025-04-03 10:00,nobody@a.test\nOLD-002,拜访,2025-04-04 10:00,m1@a.test\n"), map[string]string{"kind": "interactions"})
	if got := counts(im); got != "total 4 created 2 merged 0 skipped 0 failed 2" || failedCells(im) != "3 客户编号, 4 跟进人" {
		t.Fatalf("admin's import for reps: %s, failures %s", got, failedCells(im))
	}
	logged := recordsOf(h, w.r1, "/v1/interactions?customer_id="+acme["id"].(string)+"&from=2025-04-01T00:00:00Z&to=2025-04-02T00:00:00Z")
	if len(logged) != 1 || logged[0]["created_by"] != w.r1.id {
		t.Fatalf("the interaction logged for r1: %v", logged)
	}
}

// TestAnUploadMayBeLargerThanOtherBodies: a spreadsheet larger than the body
// limit of every other route imports; the same bytes elsewhere, or an upload
// over the import limit, get 413 and change nothing.
func TestAnUploadMayBeLargerThanOtherBodies(t *testing.T) {
	w := newWorld(t)
	h := w.h
	padding := strings.Repeat("x", 9<<20) // over the 8 MiB of other bodies
	big := "客户名称,备注\n王小明," + padding + "\nAcme,short\n"
	im := h.runImport(w.r1, "big.csv", []byte(big), nil)
	if got := counts(im); got != "total 2 created 2 merged 0 skipped 0 failed 0" {
		t.Fatalf("9 MiB upload: %s", got)
	}
	h.expect(h.announce("POST", "/v1/customers", w.r1.access, "application/json", len(big)), 413, "9 MiB customer")
	r := h.announce("POST", "/v1/imports", w.r1.access, "multipart/form-data; boundary=x", testImportBodyLimit+1)
	h.expect(r, 413, "upload over the import limit")
	if !strings.Contains(string(r.body), "body-too-large") {
		t.Fatalf("413 body %s", r.body)
	}
	if n := customerCount(t, h, w.r1); n != 2 {
		t.Fatalf("%d customers, want the 2 imported", n)
	}
}
