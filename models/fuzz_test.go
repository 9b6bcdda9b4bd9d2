package models

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz targets below hold the normalisers to what their callers rely on:
// no panic on any input, and a value once normalised is a fixed point, so
// storing, re-importing or re-validating it never changes it again.

func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{
		"138 0013 8000", "+86 138-0013-8000", "0086 13800138000", "１３８００１３８０００",
		"(020) 8888 6666", "(415) 555-2671", "+44 20 7946 0958", "(0)20 7946 0958",
		"0 0000 0000", "+8600000000", "12", "hello", "",
	} {
		f.Add(s, "CN")
	}
	f.Add("(415) 555-2671", "US")
	f.Add("020 7946 0958", "GB")
	f.Fuzz(func(t *testing.T, raw, region string) {
		got, err := NormalizePhone(raw, region)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "+") || strings.Trim(got[1:], "0123456789") != "" || len(got) < 3 {
			t.Fatalf("NormalizePhone(%q, %q) = %q, not E.164", raw, region, got)
		}
		if strings.Trim(got[1:], "0") == "" {
			t.Fatalf("NormalizePhone(%q, %q) = %q, all zeros", raw, region, got)
		}
		// E.164 carries its country code, so the region no longer matters.
		for _, r := range []string{region, "CN", "US"} {
			again, err := NormalizePhone(got, r)
			if err != nil || again != got {
				t.Fatalf("NormalizePhone(%q, %q) = %q, but NormalizePhone(%q, %q) = %q, %v", raw, region, got, got, r, again, err)
			}
		}
	})
}

func FuzzCompanyKey(f *testing.F) {
	for _, s := range []string{"Acme Co., Ltd.", "ACME Inc", "华为技术有限公司", "co co", "Ｓａｍｓｕｎｇ　Group", "inc", "a ltd co", "000公 司", "公 司 ltd", "华为 co", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		k := CompanyKey(name)
		if strings.ContainsFunc(k, func(r rune) bool { return r == ' ' }) {
			t.Fatalf("CompanyKey(%q) = %q has a space", name, k)
		}
		if utf8.ValidString(name) && !utf8.ValidString(k) {
			t.Fatalf("CompanyKey(%q) = %q, not UTF-8", name, k)
		}
		if again := CompanyKey(k); again != k {
			t.Fatalf("CompanyKey(%q) = %q, but CompanyKey(%q) = %q", name, k, k, again)
		}
	})
}

func FuzzNormalizeText(f *testing.F) {
	for _, s := range []string{"ＡＢＣ１２３", "a\u3000b", "  x  y ", "\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeText(s)
		if again := NormalizeText(n); again != n {
			t.Fatalf("NormalizeText(%q) = %q, but NormalizeText(%q) = %q", s, n, n, again)
		}
	})
}

func FuzzNormalizeDate(f *testing.F) {
	for _, s := range []string{"2026-01-05", "2026/1/5", "2026.1.5", "2026年1月5日", "2026-02-30", "0000-01-01", "9999-12-31", "２０２６－０１－０５", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := NormalizeDate(raw)
		if err != nil {
			return
		}
		if _, perr := time.Parse(time.DateOnly, d); perr != nil {
			t.Fatalf("NormalizeDate(%q) = %q, not a date: %v", raw, d, perr)
		}
		if again, err := NormalizeDate(d); err != nil || again != d {
			t.Fatalf("NormalizeDate(%q) = %q, but NormalizeDate(%q) = %q, %v", raw, d, d, again, err)
		}
	})
}

func FuzzNormalizeDateTime(f *testing.F) {
	for _, s := range []string{
		"2026-03-05 14:30", "2026/3/5 14:30:15", "2026年3月5日 14时30分", "2026年3月5日 14时30分15秒",
		"2026-03-05T14:30:00+08:00", "2026-03-05", "2026-03-05 24:00", "0000-01-01T00:00:00Z", "",
	} {
		f.Add(s)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := NormalizeDateTime(raw, shanghai)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("NormalizeDateTime(%q) = %v, not in UTC", raw, got)
		}
		// What the API writes back is RFC 3339; reading it again is the same moment.
		s := got.Format(time.RFC3339Nano)
		if again, err := NormalizeDateTime(s, shanghai); err == nil && !again.Equal(got) {
			t.Fatalf("NormalizeDateTime(%q) = %s, but NormalizeDateTime(%q) = %s", raw, s, s, again)
		}
	})
}
