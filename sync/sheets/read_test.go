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
