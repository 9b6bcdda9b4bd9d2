package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
)

// peopleFile is a customers file of people at companies: n people, each
// with their own name, phone and e-mail, spread over the given companies.
func peopleFile(headers [4]string, n int, companies []string) string {
	surnames := []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
	given := []string{"伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超"}
	var b strings.Builder
	b.WriteString(strings.Join(headers[:], ",") + "\r\n")
	for i := range n {
		name := string(surnames[i%len(surnames)]) + given[(i/len(surnames))%len(given)] + given[i%len(given)]
		fmt.Fprintf(&b, "%s,1380%07d,p%03d@example.cn,%s\r\n", name, i, i, companies[i%len(companies)])
	}
	return b.String()
}

// skippedRows is an import's list of rows skipped or merged as duplicates.
func skippedRows(t *testing.T, im map[string]any) []any {
	t.Helper()
	rows, ok := im["skipped_rows"].([]any)
	if !ok {
		t.Fatalf("no skipped_rows in %v", im)
	}
	return rows
}

func companyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("远景%02d号贸易有限公司", i)
	}
	return out
}

// TestImportPeopleSharingACompanyArePersonsAtIt: a file of people with their
// employer in a column of its own imports every person as a person customer
// of that company; people who share a company are not duplicates.
func TestImportPeopleSharingACompanyArePersonsAtIt(t *testing.T) {
	w := newWorld(t)
	h := w.h
	file := peopleFile([4]string{"客户名称", "手机", "邮箱", "公司"}, 300, companyNames(50))
	im := h.runImport(w.r1, "客户.csv", []byte(file), nil)
	if got := counts(im); got != "total 300 created 300 merged 0 skipped 0 failed 0" {
		t.Fatalf("import: %s; skipped %v", got, im["skipped_rows"])
	}
	page := h.call("GET", "/v1/customers?limit=200&q="+url.QueryEscape("远景07号贸易"), w.r1, nil, 200)["data"].([]any)
	if len(page) != 6 {
		t.Fatalf("%d customers at 远景07号贸易, want 6", len(page))
	}
	for _, c := range page {
		c := c.(map[string]any)
		if c["kind"] != "person" || c["company_name"] != "远景07号贸易有限公司" || strings.Contains(c["name"].(string), "远景") {
			t.Fatalf("imported person %v %v %v", c["kind"], c["name"], c["company_name"])
		}
	}
}

// TestImportPeopleHeadersInChineseOrEnglish: the rule holds whatever the
// language of the headers; a person's kind column, when there is one, wins.
func TestImportPeopleHeadersInChineseOrEnglish(t *testing.T) {
	for _, headers := range [][4]string{{"客户名称", "手机", "邮箱", "公司"}, {"Name", "Mobile", "E-mail", "Company"}, {"姓名", "电话", "电子邮件", "单位名称"}} {
		t.Run(headers[0], func(t *testing.T) {
			w := newWorld(t)
			h := w.h
			im := h.runImport(w.r1, "people.csv", []byte(peopleFile(headers, 12, companyNames(3))), nil)
			if got := counts(im); got != "total 12 created 12 merged 0 skipped 0 failed 0" {
				t.Fatalf("import: %s; skipped %v; failures %v", got, im["skipped_rows"], im["failures"])
			}
			for _, c := range h.call("GET", "/v1/customers?limit=200", w.r1, nil, 200)["data"].([]any) {
				c := c.(map[string]any)
				if c["kind"] != "person" || !strings.HasPrefix(c["company_name"].(string), "远景0") {
					t.Fatalf("imported %v %v %v", c["kind"], c["name"], c["company_name"])
				}
			}
		})
	}
}

// TestImportCompaniesStillDedupeByCompanyName: a file of companies (no
// column of its own for the company) imports companies, and a second row of
// one company, written another way, is a duplicate of the first.
func TestImportCompaniesStillDedupeByCompanyName(t *testing.T) {
	w := newWorld(t)
	h := w.h
	file := "客户名称,电话,邮箱\r\n" +
		"远景贸易有限公司,020 8888 6666,sales@yj.cn\r\n" +
		"华东泵业,021 5555 1234,info@hd.cn\r\n" +
		"远景贸易,020 8888 7777,other@yj.cn\r\n"
	im := h.runImport(w.r1, "公司.csv", []byte(file), nil)
	if got := counts(im); got != "total 3 created 2 merged 0 skipped 1 failed 0" {
		t.Fatalf("import: %s", got)
	}
	for _, c := range h.call("GET", "/v1/customers?limit=200", w.r1, nil, 200)["data"].([]any) {
		if c := c.(map[string]any); c["kind"] != "company" {
			t.Fatalf("imported %v %v", c["kind"], c["name"])
		}
	}
	rows := skippedRows(t, im)
	if len(rows) != 1 {
		t.Fatalf("skipped rows %v", rows)
	}
	if r := rows[0].(map[string]any); r["line"] != float64(4) || !strings.Contains(r["reason"].(string), "company 远景贸易") {
		t.Fatalf("skipped row %v", r)
	}

	// A file whose name and company columns say the same is a file of
	// companies too.
	same := "Name,Company,Phone\r\nNorth Pumps,North Pumps Ltd,+44 20 7946 0000\r\n"
	im = h.runImport(w.r1, "companies.csv", []byte(same), nil)
	if got := counts(im); got != "total 1 created 1 merged 0 skipped 0 failed 0" {
		t.Fatalf("import: %s", got)
	}
	c := h.call("GET", "/v1/customers?q=north", w.r1, nil, 200)["data"].([]any)[0].(map[string]any)
	if c["kind"] != "company" {
		t.Fatalf("North Pumps imported as a %v", c["kind"])
	}
}

// TestImportListsSkippedAndMergedRows: a row taken for a duplicate is listed
// like a failed row, with its line, the customer it matched and why, in the
// import's record and in its report file.
func TestImportListsSkippedAndMergedRows(t *testing.T) {
	w := newWorld(t)
	h := w.h
	existing := h.newCustomer(w.r1, map[string]any{"name": "Existing Co", "kind": "company",
		"emails": []any{map[string]any{"label": "work", "address": "old@exist.cn"}}})
	file := "Name,Mobile,Email,Company\r\n" +
		"王伟,13800138000,ww@yj.cn,远景贸易\r\n" +
		"李娜,13900139000,ln@yj.cn,远景贸易\r\n" +
		"Wang Wei,138 0013 8000,,\r\n" + // the same phone as line 2
		"Old Contact,,old@exist.cn,\r\n" + // the e-mail of a customer already there
		"Bad Phone,12,,\r\n"
	// A dry run lists them too: a row matching an earlier row of the file
	// names its line.
	dry := h.runImport(w.r1, "dups.csv", []byte(file), map[string]string{"dry_run": "true"})
	var dryRows []string
	for _, r := range skippedRows(t, dry) {
		r := r.(map[string]any)
		dryRows = append(dryRows, fmt.Sprintf("%v %v %v %v | %v", r["line"], r["action"], r["matched_id"], r["matched_number"], r["reason"]))
	}
	wantDry := fmt.Sprintf("4 skipped   | matches line 2 of the file (phone +8613800138000)\n"+
		"5 skipped %v %v | matches %v Existing Co (email old@exist.cn)", existing["id"], existing["number"], existing["number"])
	if got := strings.Join(dryRows, "\n"); got != wantDry {
		t.Fatalf("dry run: %s; skipped rows\n%s\nwant\n%s", counts(dry), got, wantDry)
	}

	for _, mode := range []string{"skip", "merge"} {
		t.Run(mode, func(t *testing.T) {
			im := h.runImport(w.r1, "dups-"+mode+".csv", []byte(file), map[string]string{"on_duplicate": mode})
			want := "total 5 created 2 merged 0 skipped 2 failed 1"
			if mode == "merge" {
				// The first run created lines 2 and 3; this run finds them there.
				want = "total 5 created 0 merged 2 skipped 2 failed 1"
			}
			if got := counts(im); got != want {
				t.Fatalf("import: %s; skipped %v", got, im["skipped_rows"])
			}
			wang := h.call("GET", "/v1/customers?q=13800138000", w.r1, nil, 200)["data"].([]any)[0].(map[string]any)
			var got []string
			for _, r := range skippedRows(t, im) {
				r := r.(map[string]any)
				got = append(got, fmt.Sprintf("%v %v %v %v | %v", r["line"], r["action"], r["matched_id"], r["matched_number"], r["reason"]))
			}
			wantRows := []string{
				fmt.Sprintf("4 skipped %v %v | matches %v 王伟 (phone +8613800138000)", wang["id"], wang["number"], wang["number"]),
				fmt.Sprintf("5 skipped %v %v | matches %v Existing Co (email old@exist.cn)", existing["id"], existing["number"], existing["number"]),
			}
			if mode == "merge" {
				wantRows = []string{
					fmt.Sprintf("2 skipped %v %v | imported before", wang["id"], wang["number"]),
					fmt.Sprintf("3 skipped .*"),
					fmt.Sprintf("4 merged %v %v | matches %v 王伟 (phone +8613800138000); merged into it", wang["id"], wang["number"], wang["number"]),
					fmt.Sprintf("5 merged %v %v | matches %v Existing Co (email old@exist.cn); merged into it", existing["id"], existing["number"], existing["number"]),
				}
			}
			if len(got) != len(wantRows) {
				t.Fatalf("skipped rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
			}
			for i := range got {
				if !(got[i] == wantRows[i] || strings.HasSuffix(wantRows[i], ".*") && strings.HasPrefix(got[i], strings.TrimSuffix(wantRows[i], ".*"))) {
					t.Fatalf("skipped rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
				}
			}

			// The report file lists them with the failed rows, in line order.
			r := h.do("GET", "/v1/imports/"+im["id"].(string)+"/failures", w.r1.access, nil)
			h.expect(r, 200, "report file")
			rows, err := csv.NewReader(bytes.NewReader(r.body[3:])).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, row := range rows {
				lines = append(lines, strings.Join(row, ","))
			}
			report := strings.Join(lines, "\n")
			if rows[0][0] != "line" || strings.Join(rows[0], ",") != "line,column,value,reason,outcome,matched_id,matched_number" {
				t.Fatalf("report header %v", rows[0])
			}
			action := map[string]string{"skip": "skipped", "merge": "merged"}[mode]
			wantLines := []string{
				fmt.Sprintf("4,,,matches %v 王伟 (phone +8613800138000)", wang["number"]),
				fmt.Sprintf("5,,,matches %v Existing Co (email old@exist.cn)", existing["number"]),
				"6,Mobile,12,",
			}
			if !strings.HasPrefix(lines[len(lines)-3], wantLines[0]) || !strings.HasSuffix(lines[len(lines)-3], fmt.Sprintf(",%s,%v,%v", action, wang["id"], wang["number"])) ||
				!strings.HasPrefix(lines[len(lines)-2], wantLines[1]) || !strings.HasSuffix(lines[len(lines)-2], fmt.Sprintf(",%s,%v,%v", action, existing["id"], existing["number"])) ||
				!strings.HasPrefix(lines[len(lines)-1], wantLines[2]) || !strings.HasSuffix(lines[len(lines)-1], ",failed,,") {
				t.Fatalf("report file:\n%s", report)
			}
		})
	}
}

// guideBlock returns the fenced block of docs/imports.md whose info string
// is info ("csv file").
func guideBlock(t *testing.T, info string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/imports.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```"+info+"\n")
	block, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatalf("no ```%s block in docs/imports.md", info)
	}
	return block
}

// TestImportsGuideExamples imports the example of docs/imports.md and checks
// that the record and the report file are what the page shows, but for the
// matched customer's id and number.
func TestImportsGuideExamples(t *testing.T) {
	w := newWorld(t)
	h := w.h
	file := strings.ReplaceAll(guideBlock(t, "csv file"), "\n", "\r\n")
	im := h.runImport(w.r1, "客户.csv", []byte(file), nil)
	wang := h.call("GET", "/v1/customers?q=13800138000", w.r1, nil, 200)["data"].([]any)[0].(map[string]any)

	var doc struct {
		Created, Merged, Skipped, Failed int
		SkippedRows                      []map[string]any `json:"skipped_rows"`
	}
	if err := json.Unmarshal([]byte(guideBlock(t, "json skipped_rows")), &doc); err != nil {
		t.Fatal(err)
	}
	docID, docNumber := doc.SkippedRows[0]["matched_id"].(string), doc.SkippedRows[0]["matched_number"].(string)
	asDoc := strings.NewReplacer(wang["id"].(string), docID, wang["number"].(string), docNumber)
	got, _ := json.Marshal(skippedRows(t, im))
	want, _ := json.Marshal(doc.SkippedRows)
	if asDoc.Replace(string(got)) != string(want) || counts(im) != fmt.Sprintf("total 5 created %d merged %d skipped %d failed %d", doc.Created, doc.Merged, doc.Skipped, doc.Failed) {
		t.Fatalf("import: %s\nskipped rows %s\nthe guide says %+v", counts(im), got, doc)
	}

	kinds := map[string]string{}
	for _, c := range h.call("GET", "/v1/customers?limit=200", w.r1, nil, 200)["data"].([]any) {
		c := c.(map[string]any)
		kinds[c["name"].(string)] = fmt.Sprint(c["kind"], " ", c["company_name"])
	}
	if fmt.Sprint(kinds) != "map[李娜:person 远景贸易有限公司 王伟:person 远景贸易有限公司 远景贸易有限公司:company 远景贸易有限公司]" {
		t.Fatalf("customers %v", kinds)
	}

	r := h.do("GET", "/v1/imports/"+im["id"].(string)+"/failures", w.r1.access, nil)
	h.expect(r, 200, "report file")
	report := strings.ReplaceAll(strings.TrimPrefix(string(r.body), "\uFEFF"), "\r\n", "\n")
	if asDoc.Replace(report) != guideBlock(t, "csv report") {
		t.Fatalf("report file:\n%s\nthe guide shows:\n%s", report, guideBlock(t, "csv report"))
	}
}
