package sheets

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Spreadsheet formula injection (CSV injection): Excel, LibreOffice and
// Google Sheets run a cell that starts with = + - or @ as a formula, so a
// customer named =HYPERLINK("http://evil", "click") or +cmd|' /C calc'!A0
// would act on the machine of whoever opens an export. Every cell of every
// file we write (exports, an import's failures) goes through defuse, and
// every cell we read goes through undefuse, so an export imports back as it
// was.

// formulaStarts are the first characters that make a cell a formula, in any
// column: = + - @, the full-width and small forms that Excel in Chinese and
// Japanese locales turns into them, and tab, CR and LF, which some
// spreadsheets skip before looking at the next character.
const formulaStarts = "=+-@\t\r\n＝＋－＠﹦﹢﹣﹫"

// literal matches a cell that is one literal number or phone number, or
// several joined by "; " (the phones column): a number with an optional sign
// and decimal part (+8613800138000, -20, 3.5) or a masked phone
// (+86138****8000). Such a cell stays as it is, so phone numbers and
// negative balances are readable and sort as numbers. It is safe although it
// starts with + or -: it has no letters, so it can name no function, cell or
// DDE command (cmd|'…'!A0); as a formula it evaluates to the number it shows,
// or, with the mask's adjacent stars or "; ", is a syntax error that the
// spreadsheet shows as text. +1+1 and +1*2 are not literals: they compute a
// value the cell does not show, and are defused.
var literal = regexp.MustCompile(`^(?:[+-]?[0-9]+(?:\.[0-9]+)?|\+[0-9]+\*{4,}[0-9]+)(?:; (?:[+-]?[0-9]+(?:\.[0-9]+)?|\+[0-9]+\*{4,}[0-9]+))*$`)

// defuse returns s as text a spreadsheet shows and never runs: a formula cell
// gets a leading apostrophe, which Excel and LibreOffice read as "text
// follows" (the apostrophe shows in the cell; the value cannot run).
//
// A value that already starts with apostrophes before a formula ("'=1") gets
// one more, since undefuse takes one off such a value: otherwise it would
// import back as the formula.
func defuse(s string) string {
	if !marked(s) {
		return s
	}
	return "'" + s
}

// marked reports whether defuse marks s: a formula, after any apostrophes.
func marked(s string) bool { return formula(strings.TrimLeft(s, "'")) }

// formula reports whether a spreadsheet might run s as a formula: its first
// character, or its first after leading spaces (ASCII, no-break or the
// full-width ideographic space), is in formulaStarts, and it is no literal.
func formula(s string) bool {
	if s == "" {
		return false
	}
	first, _ := utf8.DecodeRuneInString(s)
	if !strings.ContainsRune(formulaStarts, first) {
		first, _ = utf8.DecodeRuneInString(strings.TrimLeftFunc(s, unicode.IsSpace))
		if !strings.ContainsRune(formulaStarts, first) {
			return false
		}
	}
	return !literal.MatchString(s)
}

// undefuse removes the apostrophe defuse added, so a value exported and
// imported back is the value it was. A leading apostrophe before anything
// else is kept: it is part of the value.
func undefuse(s string) string {
	if rest, ok := strings.CutPrefix(s, "'"); ok && marked(rest) {
		return rest
	}
	return s
}
