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
	// The numbering plan of the country decides, not only the length: a
	// Chinese mobile is 1[3-9] and nine more digits, a landline an area code
	// and its subscriber number, so "123 4567 8901" or "+86 12345678" is no
	// phone a customer can be reached at.
	if !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("is not a phone number in use in %s", regionName(num))
	}
	// No numbering plan gives a subscriber a number of zeros, and a national
	// number that still starts with 0 kept a trunk prefix the parser could not
	// strip ("0 0000 0000"): stored, it would lose that 0 on the next parse.
	// Italian numbers keep their leading 0 in E.164 and say so.
	nsn := phonenumbers.GetNationalSignificantNumber(num)
	if strings.Trim(nsn, "0") == "" || (nsn[0] == '0' && !num.GetItalianLeadingZero()) {
		return "", fmt.Errorf("is not a phone number")
	}
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	// What is stored is read back through here (edits, imports, sync), so it
	// must be a fixed point; a number that formats to something that parses
	// differently is not one we can keep.
	if again, err := phonenumbers.Parse(e164, ""); err != nil || !phonenumbers.IsPossibleNumber(again) ||
		phonenumbers.Format(again, phonenumbers.E164) != e164 {
		return "", fmt.Errorf("is not a phone number")
	}
	return e164, nil
}

// regionName names the country of a number's code, or the code itself when
// the code is shared or unknown.
func regionName(num *phonenumbers.PhoneNumber) string {
	if r := phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode())); r != "" && r != "ZZ" {
		return r
	}
	return "+" + strconv.Itoa(int(num.GetCountryCode()))
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
	s = dropSpacesBeforeHan(s)
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

// dropSpacesBeforeHan removes each space followed by a Han character. Chinese
// writes no spaces between words, so "华为 有限 公司" names the same company as
// "华为有限公司"; joining them before the suffixes are cut keeps CompanyKey of its
// own result unchanged (the result has no spaces, so a Han suffix must already
// be visible to the first pass).
func dropSpacesBeforeHan(s string) string {
	var b strings.Builder
	runes := []rune(s)
	for i, r := range runes {
		if r == ' ' && i+1 < len(runes) && unicode.Is(unicode.Han, runes[i+1]) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

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

var dateTimeForms = regexp.MustCompile(`^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?` +
	`(?:\s*[T ]?\s*(\d{1,2})\s*[:：时点]\s*(\d{1,2})(?:\s*[:：]\s*(\d{1,2})(?:\.\d+)?|\s*分(?:\s*(\d{1,2})\s*秒)?)?)?$`)

// NormalizeDateTime accepts a moment as RFC 3339 (with its offset), or as a
// date in any form NormalizeDate takes followed by an optional time of day
// (2026-03-05 14:30, 2026/3/5 14:30:15, 2026年3月5日 14时30分), read in loc. A
// date alone is midnight in loc.
func NormalizeDateTime(raw string, loc *time.Location) (time.Time, error) {
	s := NormalizeText(raw)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	m := dateTimeForms.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, fmt.Errorf("must be a date and time such as 2026-01-05 14:30")
	}
	n := make([]int, 8)
	for i := 1; i < len(m); i++ {
		n[i], _ = strconv.Atoi(m[i])
	}
	n[6] += n[7] // seconds after a colon, or as 秒
	t := time.Date(n[1], time.Month(n[2]), n[3], n[4], n[5], n[6], 0, loc)
	if t.Year() != n[1] || int(t.Month()) != n[2] || t.Day() != n[3] || n[4] > 23 || n[5] > 59 || n[6] > 59 {
		return time.Time{}, fmt.Errorf("%q is not a date and time", raw)
	}
	return t.UTC(), nil
}
