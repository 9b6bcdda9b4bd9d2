package sheets

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// rowReader yields a spreadsheet's rows one at a time, with their line
// numbers as the spreadsheet shows them (the header is line 1).
type rowReader interface {
	next() (line int, cells []string, err error) // io.EOF after the last
	close() error
}

// FormatOf tells the format of a file from its name.
func FormatOf(name string) (string, error) {
	switch lower := strings.ToLower(name); {
	case strings.HasSuffix(lower, ".csv"), strings.HasSuffix(lower, ".txt"):
		return CSV, nil
	case strings.HasSuffix(lower, ".xlsx"):
		return XLSX, nil
	}
	return "", fmt.Errorf("%q is neither .csv nor .xlsx (old .xls files: save as .xlsx first)", name)
}

// openRows opens path as format.
func openRows(path, format string) (rowReader, string, error) {
	if format == XLSX {
		r, err := openXLSX(path)
		return r, "xlsx", err
	}
	return openCSV(path)
}

type csvRows struct {
	f    *os.File
	r    *csv.Reader
	line int
	// gb tells that cells are GB18030 bytes to decode; otherwise they must
	// be UTF-8 as they are.
	gb bool
}

// openCSV opens a CSV file in UTF-8 (with or without a byte order mark) or
// GB18030 (the superset of GBK that Chinese Excel writes), chosen from the
// first 64 KiB: UTF-8 unless most of its lines with other than ASCII are not
// UTF-8. The separator is the comma, or the tab or semicolon when the header
// line has more of those. It returns the encoding it chose.
//
// The file is split into rows and cells before it is decoded, which is safe
// for both encodings: every byte of a GB18030 multi-byte character is 0x30 or
// above, so none is a quote, separator or line end. Each cell is then decoded
// on its own, and a row holding bytes the file's encoding cannot decode (rows
// pasted from an export in another encoding) is a failed row rather than text
// stored with U+FFFD in it.
func openCSV(path string) (rowReader, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	head, err := br.Peek(64 << 10)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		f.Close()
		return nil, "", err
	}
	encoding, gb := "utf-8", false
	switch {
	case bytes.HasPrefix(head, []byte("\xEF\xBB\xBF")):
		_, _ = br.Discard(3)
		encoding = "utf-8 with BOM"
		head = head[3:]
	case !mostlyUTF8(head):
		encoding, gb = "gb18030", true
	}
	r := csv.NewReader(br)
	r.Comma = separator(head)
	r.FieldsPerRecord = -1 // rows may be short or long; the mapping copes
	r.LazyQuotes = true
	return &csvRows{f: f, r: r, gb: gb}, encoding, nil
}

// mostlyUTF8 reports whether the lines of a sample that hold other than ASCII
// are mostly UTF-8 (ties go to GB18030, which most Chinese spreadsheets
// are). A character cut off at the end of the sample does not count.
func mostlyUTF8(b []byte) bool {
	if validUTF8Prefix(b) {
		return true
	}
	var utf, other int
	for _, line := range bytes.Split(b, []byte("\n")) {
		switch {
		case isASCII(string(line)):
		case utf8.Valid(line):
			utf++
		default:
			other++
		}
	}
	return utf > other
}

// validUTF8Prefix reports whether b is UTF-8, allowing a character cut off
// at the end of the sample.
func validUTF8Prefix(b []byte) bool {
	for cut := 0; cut < 4 && cut <= len(b); cut++ {
		if utf8.Valid(b[:len(b)-cut]) {
			return true
		}
	}
	return false
}

func separator(head []byte) rune {
	first, _, _ := bytes.Cut(head, []byte("\n"))
	best, bestN := ',', bytes.Count(first, []byte(","))
	for _, c := range []rune{'\t', ';'} {
		if n := bytes.Count(first, []byte(string(c))); n > bestN {
			best, bestN = c, n
		}
	}
	return best
}

// gbReplacement is U+FFFD as GB18030 writes it: a cell that holds it meant it.
var gbReplacement = []byte{0x84, 0x31, 0xA4, 0x37}

func (c *csvRows) next() (int, []string, error) {
	cells, err := c.r.Read()
	if err != nil {
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			return perr.Line, nil, fmt.Errorf("line %d is not valid CSV: %w", perr.Line, perr.Err)
		}
		return 0, nil, err
	}
	line, _ := c.r.FieldPos(0)
	c.line = line
	for i, cell := range cells {
		if isASCII(cell) {
			continue
		}
		ok := utf8.ValidString(cell)
		if c.gb {
			decoded, derr := simplifiedchinese.GB18030.NewDecoder().String(cell)
			ok = derr == nil && (!strings.ContainsRune(decoded, utf8.RuneError) || bytes.Contains([]byte(cell), gbReplacement))
			cells[i] = decoded
		}
		if !ok {
			enc := "UTF-8"
			if c.gb {
				enc = "GB18030/GBK"
			}
			return line, nil, fmt.Errorf("line %d, column %d holds bytes that are not %s text like the rest of the file: the file mixes encodings; save it again in one encoding (UTF-8 is best)", line, i+1, enc)
		}
	}
	undefuseAll(cells)
	return line, cells, nil
}

func (c *csvRows) close() error { return c.f.Close() }

type xlsxRows struct {
	f    *excelize.File
	rows *excelize.Rows
	line int
}

// openXLSX reads the first sheet of an Excel workbook, row by row (excelize
// streams rows from the file rather than loading the sheet).
func openXLSX(path string) (rowReader, error) {
	// An .xlsx is a zip: bound what it may unpack to (a few bytes of
	// upload must not unpack into gigabytes), and keep big sheets on disk
	// rather than in memory.
	f, err := excelize.OpenFile(path, excelize.Options{UnzipSizeLimit: 1 << 30, UnzipXMLSizeLimit: 16 << 20})
	if err != nil {
		return nil, fmt.Errorf("not an Excel .xlsx workbook: %w", err)
	}
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		f.Close()
		return nil, errors.New("the workbook has no sheet")
	}
	rows, err := f.Rows(sheets[0])
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read sheet %q: %w", sheets[0], err)
	}
	return &xlsxRows{f: f, rows: rows}, nil
}

func (x *xlsxRows) next() (int, []string, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return 0, nil, err
		}
		return 0, nil, io.EOF
	}
	x.line++
	// Raw values: a date cell as its serial number (the import reads those
	// in date columns) rather than formatted by a US-style number format.
	cells, err := x.rows.Columns(excelize.Options{RawCellValue: true})
	undefuseAll(cells)
	return x.line, cells, err
}

// undefuseAll takes off the apostrophes our exports put before formulas.
func undefuseAll(cells []string) {
	for i, c := range cells {
		cells[i] = undefuse(c)
	}
}

func (x *xlsxRows) close() error {
	_ = x.rows.Close()
	return x.f.Close()
}

// countRows counts the data rows of a file (all rows but the header), for
// progress and the time left. It reads the file once without keeping it.
func countRows(path, format string) (int, error) {
	r, _, err := openRows(path, format)
	if err != nil {
		return 0, err
	}
	defer r.close()
	n := 0
	for {
		line, cells, err := r.next()
		if errors.Is(err, io.EOF) {
			return max(n-1, 0), nil
		}
		if err != nil {
			if line == 0 {
				return 0, err
			}
			n++ // a row that cannot be read is a failed row of the import
			continue
		}
		if !blank(cells) {
			n++
		}
	}
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}
