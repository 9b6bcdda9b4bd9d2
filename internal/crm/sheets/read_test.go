package sheets

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

func TestEachHeaderMapsToOneField(t *testing.T) {
	for name, k := range kinds {
		seen := map[string]string{}
		for field, names := range k.headers {
			for _, n := range names {
				key := normalizeHeader(n)
				if prev, ok := seen[key]; ok && prev != field {
					t.Errorf("%s: header %q maps to both %s and %s", name, n, prev, field)
				}
				seen[key] = field
			}
		}
		for _, need := range k.required {
			if !slices.ContainsFunc(k.headers[need], isASCII) {
				t.Errorf("%s: required field %s has no English header", name, need)
			}
		}
	}
	owner := map[string]string{}
	for field, names := range customerHeaders {
		for _, n := range names {
			owner[normalizeHeader(n)] = field
		}
	}
	for _, c := range customerColumns {
		if _, ok := owner[normalizeHeader(c.en)]; !ok {
			t.Errorf("the export's header %q is not recognized by the import", c.en)
		}
		if _, ok := owner[normalizeHeader(c.zh)]; !ok {
			t.Errorf("the export's header %q is not recognized by the import", c.zh)
		}
	}
	for raw, want := range map[string]string{"E-mail *": "email", "  手机号码（必填）": "手机号码必填", "Customer No.": "customerno", "ＮＡＭＥ": "name"} {
		if got := normalizeHeader(raw); got != want {
			t.Errorf("normalizeHeader(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestCSVEncodingsAndSeparators(t *testing.T) {
	text := "客户名称;手机\n王小明;13800138000\n"
	gbk, _ := simplifiedchinese.GBK.NewEncoder().String(text)
	cases := map[string]struct {
		content, encoding string
	}{
		"bom.csv":  {"\uFEFF" + text, "utf-8 with BOM"},
		"utf8.csv": {text, "utf-8"},
		"gbk.csv":  {gbk, "gb18030"},
		"tabs.csv": {"客户名称\t手机\n王小明\t13800138000\n", "utf-8"},
	}
	for name, c := range cases {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		r, encoding, err := openCSV(path)
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]string
		for {
			_, cells, err := r.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, cells)
		}
		r.close()
		if encoding != c.encoding || len(rows) != 2 || rows[0][0] != "客户名称" || rows[1][0] != "王小明" || rows[1][1] != "13800138000" {
			t.Errorf("%s: encoding %s, rows %q", name, encoding, rows)
		}
	}
}

func TestSplitList(t *testing.T) {
	got := splitList("138 0013 8000；139 0013 9000, 020-8888 6666 / 、")
	if len(got) != 3 || got[0] != "138 0013 8000" || got[2] != "020-8888 6666" {
		t.Fatalf("splitList: %q", got)
	}
}

func TestMoneyAsPeopleTypeIt(t *testing.T) {
	p := columnPlan{headers: []string{"金额"}, targets: []string{"amount"}}
	for _, c := range []struct {
		raw, currency string
		want          int64
		ok            bool
	}{
		{"1,280.50", "CNY", 128050, true}, {"¥800", "CNY", 80000, true}, {"800元", "CNY", 80000, true},
		{"RMB 1,000", "CNY", 100000, true}, {"０.10", "CNY", 10, true}, {"1500", "JPY", 1500, true}, {"12.30", "USD", 1230, true},
		{"12.345", "CNY", 0, false}, {"-5", "CNY", 0, false}, {"abc", "CNY", 0, false}, {"1.5", "JPY", 0, false},
		{"1.2.3", "CNY", 0, false}, {".5", "CNY", 0, false}, {"99999999999999999", "CNY", 0, false},
	} {
		cells := p.cells([]string{c.raw}, false)
		got, ok := cells.money("amount", c.currency)
		if ok != c.ok || got != c.want || (len(cells.v.Fields) == 0) != c.ok {
			t.Errorf("money(%q, %s) = %d, %v (errors %v); want %d, %v", c.raw, c.currency, got, ok, cells.v.Fields, c.want, c.ok)
		}
	}
}

func TestExcelSerialDates(t *testing.T) {
	p := columnPlan{headers: []string{"日期"}, targets: []string{"ordered_on"}}
	if got := p.cells([]string{"46086"}, true).date("ordered_on"); got != "2026-03-05" {
		t.Errorf("serial 46086 in a workbook = %q", got)
	}
	if got := p.cells([]string{"46086"}, false).date("ordered_on"); got != "46086" {
		t.Errorf("46086 in a CSV = %q, want it left for the CRM to refuse", got)
	}
}
