package models

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/width"
)

// NormalizeText folds full-width letters, digits and punctuation to their
// ordinary forms (Chinese input methods produce "ＡＢＣ１２３"), turns every kind of
// space (including the ideographic space U+3000) into one ASCII space and trims.
// CJK characters are left as they are.
func NormalizeText(s string) string {
	return strings.Join(strings.Fields(width.Fold.String(s)), " ")
}

// DefaultPhoneRegion is used when a tenant has not set its own.
const DefaultPhoneRegion = "CN"

// NormalizePhone parses a phone number written in any common way ("138 0013 8000",
// "+86 138-0013-8000", "(0)20 7946 0958") and returns it in E.164 ("+8613800138000").
// region is the ISO 3166 country assumed for numbers without a country code.
func NormalizePhone(raw, region string) (string, error) {
	raw = NormalizeText(raw)
	if raw == "" {
		return "", fmt.Errorf("is empty")
	}
	num, err := phonenumbers.Parse(raw, strings.ToUpper(region))
	if err != nil {
		return "", fmt.Errorf("is not a phone number (%s)", strings.TrimPrefix(err.Error(), "the phone number supplied "))
	}
	if !phonenumbers.IsPossibleNumber(num) {
		return "", fmt.Errorf("has the wrong number of digits for %s", phonenumbers.GetRegionCodeForNumber(num))
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// ValidRegion reports whether region is an ISO 3166 country the phone library knows.
func ValidRegion(region string) bool {
	return phonenumbers.GetCountryCodeForRegion(strings.ToUpper(region)) != 0
}

// legalSuffixes are the endings that name a company's legal form rather than the
// company; duplicate detection ignores them. Longest first, since they are
// stripped repeatedly from the end.
var legalSuffixes = []string{
	"股份有限公司", "有限责任公司", "有限公司", "集团公司", "分公司", "公司", "集团",
	"corporation", "incorporated", "company", "limited", "holdings", "group",
	"co ltd", "pte ltd", "pty ltd", "gmbh", "corp", "inc", "ltd", "llc", "plc", "co", "sa", "ag", "bv",
}

var nonWord = regexp.MustCompile(`[^\p{L}\p{N}]+`)

// CompanyKey reduces a company name to what identifies the company: lower case,
// no punctuation, no legal-form suffix. "Acme Co., Ltd." and "ACME Inc" both give
// "acme"; "华为技术有限公司" gives "华为技术".
func CompanyKey(name string) string {
	s := strings.ToLower(NormalizeText(name))
	s = strings.TrimSpace(nonWord.ReplaceAllString(s, " "))
	for changed := true; changed; {
		changed = false
		for _, suf := range legalSuffixes {
			if trimmed, ok := strings.CutSuffix(s, suf); ok && trimmed != "" {
				// Latin suffixes must be whole words; CJK ones need no separator.
				if last := []rune(trimmed); isLatin(suf) && !unicode.IsSpace(last[len(last)-1]) {
					continue
				}
				s = strings.TrimSpace(trimmed)
				changed = true
			}
		}
	}
	return strings.ReplaceAll(s, " ", "")
}

func isLatin(s string) bool { return s != "" && s[0] < 0x80 }

var dateForms = regexp.MustCompile(`^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$`)

// NormalizeDate accepts a calendar date as 2026-01-05, 2026/1/5, 2026.1.5 or
// 2026年1月5日 and returns it as ISO 8601 (2026-01-05).
func NormalizeDate(raw string) (string, error) {
	m := dateForms.FindStringSubmatch(NormalizeText(raw))
	if m == nil {
		return "", fmt.Errorf("must be a date such as 2026-01-05")
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	d, _ := strconv.Atoi(m[3])
	t := time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC)
	if t.Year() != y || int(t.Month()) != mo || t.Day() != d {
		return "", fmt.Errorf("%q is not a calendar date", raw)
	}
	return t.Format(time.DateOnly), nil
}
