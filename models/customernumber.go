package models

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// dammTable is the quasigroup of order 10 from H. Michael Damm's 2004 thesis.
// Its check digit catches every single-digit error and every swap of two
// adjacent digits, which Luhn misses for 09↔90.
var dammTable = [10][10]byte{
	{0, 3, 1, 7, 5, 9, 8, 6, 4, 2},
	{7, 0, 9, 2, 1, 5, 4, 8, 6, 3},
	{4, 2, 0, 6, 8, 7, 1, 3, 5, 9},
	{1, 7, 5, 0, 9, 8, 3, 4, 2, 6},
	{6, 1, 2, 3, 0, 4, 5, 9, 7, 8},
	{3, 6, 7, 4, 2, 0, 9, 5, 8, 1},
	{5, 8, 6, 9, 7, 2, 0, 1, 3, 4},
	{8, 9, 4, 5, 3, 6, 2, 0, 1, 7},
	{9, 4, 3, 8, 6, 1, 7, 2, 0, 5},
	{2, 5, 8, 1, 4, 3, 6, 7, 9, 0},
}

// DammDigit returns the check digit of the decimal digits in s (other characters
// are skipped).
func DammDigit(s string) byte {
	var interim byte
	for _, r := range s {
		if r >= '0' && r <= '9' {
			interim = dammTable[interim][r-'0']
		}
	}
	return interim
}

// NumberPattern is a tenant's customer-number format: Prefix, then the year the
// number was assigned (when Year is set), a dash, the sequence zero-padded to
// Digits, a dash and a Damm check digit: C2026-000123-8.
type NumberPattern struct {
	Prefix string `bson:"prefix" json:"prefix"`
	Year   bool   `bson:"year" json:"year"`
	Digits int    `bson:"digits" json:"digits"`
}

// DefaultNumberPattern gives numbers such as C2026-000123-8.
var DefaultNumberPattern = NumberPattern{Prefix: "C", Year: true, Digits: 6}

var prefixPattern = regexp.MustCompile(`^[A-Z]{0,6}$`)

func (p NumberPattern) validate(v *ValidationError, field string) {
	if !prefixPattern.MatchString(p.Prefix) {
		v.Add(field+".prefix", "must be 0 to 6 capital letters A-Z")
	}
	if p.Digits < 3 || p.Digits > 12 {
		v.Add(field+".digits", "must be from 3 to 12")
	}
}

// Format returns the customer number for sequence seq assigned at t. Sequences
// longer than Digits keep all their digits, so numbers never repeat.
func (p NumberPattern) Format(seq int64, t time.Time) string {
	var b strings.Builder
	b.WriteString(p.Prefix)
	if p.Year {
		b.WriteString(strconv.Itoa(t.Year()))
		b.WriteByte('-')
	}
	fmt.Fprintf(&b, "%0*d", p.Digits, seq)
	body := b.String()
	return body + "-" + string('0'+DammDigit(body))
}

// ValidCustomerNumber reports whether a customer number's check digit matches.
// Search uses it to tell a mistyped number from one that does not exist.
func ValidCustomerNumber(n string) bool {
	i := strings.LastIndexByte(n, '-')
	if i < 0 || i != len(n)-2 || n[i+1] < '0' || n[i+1] > '9' {
		return false
	}
	return DammDigit(n[:i]) == n[i+1]-'0'
}
