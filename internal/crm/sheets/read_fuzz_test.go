package sheets

import (
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fieldcrm/fieldcrm/models"
)

// Any bytes as a CSV file are read as rows of UTF-8 cells or refused row by
// row with an error, never a panic; the separator is one of the three.
func FuzzCSVRows(f *testing.F) {
	for _, s := range []string{
		"姓名,手机\n张伟,138 0013 8000\n", "name;phone\nA;1\n", "a\tb\tc\n1\t2\n", "\xEF\xBB\xBFname\n\"x,\"\"y\"\n",
		"\xd5\xc5\xce\xb0,1\n", "a,\"b\n", "'=1+1,x\n", "\r\n\r\n", "",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if r := separator(data); r != ',' && r != '\t' && r != ';' {
			t.Fatalf("separator(%q) = %q", data, r)
		}
		path := filepath.Join(dir, "f.csv")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rows, _, err := openRows(path, CSV)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer rows.close()
		for range len(data) + 2 {
			_, cells, err := rows.next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				continue // a failed row; the next one is read on
			}
			for _, c := range cells {
				if !utf8.ValidString(c) {
					t.Fatalf("%q gave a cell %q that is not UTF-8", data, c)
				}
			}
		}
		t.Fatalf("%q: more rows than bytes", data)
	})
}

// An amount read is never negative and says the same amount when written
// back in the main unit; an amount refused leaves its error.
func FuzzMoney(f *testing.F) {
	for _, s := range []string{"1,280.50", "¥800", "800元", "RMB 1,000", "０.10", "12.345", "-5", ".5", "99999999999999999", "1.", "0.000"} {
		f.Add(s, "CNY")
	}
	f.Add("1500", "JPY")
	p := columnPlan{headers: []string{"金额"}, targets: []string{"amount"}}
	f.Fuzz(func(t *testing.T, raw, currency string) {
		c := p.cells([]string{raw}, false)
		n, ok := c.money("amount", currency)
		if strings.TrimSpace(raw) == "" { // an empty cell is no amount, and no error
			if ok || len(c.v.Fields) > 0 {
				t.Fatalf("money(%q, %q) = %d, %v with errors %v", raw, currency, n, ok, c.v.Fields)
			}
			return
		}
		if ok != (len(c.v.Fields) == 0) {
			t.Fatalf("money(%q, %q) = %d, %v with errors %v", raw, currency, n, ok, c.v.Fields)
		}
		if !ok {
			return
		}
		if n < 0 {
			t.Fatalf("money(%q, %q) = %d", raw, currency, n)
		}
		s := strconv.FormatInt(n, 10)
		if !zeroDecimalCurrencies[currency] {
			s = strconv.FormatInt(n/100, 10) + "." + strconv.FormatInt(100+n%100, 10)[1:]
		}
		again, ok := p.cells([]string{s}, false).money("amount", currency)
		if !ok || again != n {
			t.Fatalf("money(%q, %q) = %d, written %q, read again %d, %v", raw, currency, n, s, again, ok)
		}
	})
}

func FuzzNumber(f *testing.F) {
	for _, s := range []string{"1,280.5", "1e3", "NaN", "Inf", "-0", "0x1p-2", "1_000", ""} {
		f.Add(s)
	}
	p := columnPlan{headers: []string{"n"}, targets: []string{"n"}}
	f.Fuzz(func(t *testing.T, raw string) {
		c := p.cells([]string{raw}, false)
		n, ok := c.number("n")
		if ok && (math.IsNaN(n) || math.IsInf(n, 0) || len(c.v.Fields) > 0) {
			t.Fatalf("number(%q) = %v, %v with errors %v", raw, n, ok, c.v.Fields)
		}
	})
}

// A workbook's serial date is a calendar date the CRM accepts, and a moment
// the date of that day.
func FuzzExcelSerial(f *testing.F) {
	for _, s := range []string{"46086", "46086.5", "1", "0.5", "2958465", "2958465.99999", "1e5", "-1", "NaN", "46086.999999999"} {
		f.Add(s)
	}
	p := columnPlan{headers: []string{"d", "t"}, targets: []string{"d", "t"}}
	f.Fuzz(func(t *testing.T, raw string) {
		c := p.cells([]string{raw, raw}, true)
		d := c.date("d")
		if _, ok := c.excelSerial(strings.TrimSpace(raw), time.UTC); !ok {
			return
		}
		if got, err := models.NormalizeDate(d); err != nil || got != d {
			t.Fatalf("serial %q read as date %q, which NormalizeDate gives %q, %v", raw, d, got, err)
		}
		m := c.moment("t", time.UTC)
		if len(c.v.Fields) > 0 || m.IsZero() || m.Year() < 1899 || m.Year() > 10000 {
			t.Fatalf("serial %q read as moment %v (errors %v)", raw, m, c.v.Fields)
		}
	})
}

// A cell's list of values holds no empty value and no separator, and
// splitting the values joined again gives them back.
func FuzzSplitList(f *testing.F) {
	for _, s := range []string{"138 0013 8000；139 0013 9000, 020-8888 6666 / 、", "a|b\nc", " ; ", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts := splitList(s)
		for _, p := range parts {
			if p == "" || p != strings.TrimSpace(p) || listSplit.MatchString(p) {
				t.Fatalf("splitList(%q) = %q", s, parts)
			}
		}
		if again := splitList(strings.Join(parts, ";")); !slices.Equal(again, parts) {
			t.Fatalf("splitList(%q) = %q, but split again %q", s, parts, again)
		}
	})
}

// A value written out defused is read back as it was.
func FuzzDefuse(f *testing.F) {
	for _, s := range []string{"=1+1", "'=1", "+86 138", "-5", "@x", " \u3000=A1", "plain", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := undefuse(defuse(s)); got != s {
			t.Fatalf("undefuse(defuse(%q)) = %q", s, got)
		}
	})
}
