package sheets

import (
	"encoding/csv"
	"io"
	"strconv"

	"github.com/fieldcrm/fieldcrm/models"
)

// FailurePages returns the failed rows of an import after the one with id
// after, a page at a time (crm.Service.ImportFailures).
type FailurePages func(after string) ([]models.ImportFailure, error)

// SkippedPages returns the rows an import skipped or merged as duplicates
// from page number page (from 1) on, a few pages at a time, and the page to
// ask for next, 0 after the last (crm.Service.SkippedRows).
type SkippedPages func(page int) (rows []models.SkippedRow, next int, err error)

// WriteFailures writes an import's report as CSV, UTF-8 with a byte order
// mark for Excel: every row that did not simply become a record, in line
// order. A failed row (outcome failed, starting with first) has the column,
// value and reason of each refused cell; a row skipped or merged as a
// duplicate has the reason and the id and number of the customer it
// matched. The first four columns are those of the failures-only file this
// once was. The values are the spreadsheet's own, so formulas among them
// are defused.
func WriteFailures(w io.Writer, first []models.ImportFailure, next FailurePages, skipped SkippedPages) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return err
	}
	out := csv.NewWriter(w)
	_ = out.Write([]string{"line", "column", "value", "reason", "outcome", "matched_id", "matched_number"})
	failures := first
	skips, page, err := skipped(1)
	if err != nil {
		return err
	}
	for len(failures) > 0 || len(skips) > 0 {
		if len(skips) == 0 || len(failures) > 0 && failures[0].Line <= skips[0].Line {
			f := failures[0]
			_ = out.Write([]string{strconv.Itoa(f.Line), defuse(f.Column), defuse(f.Value), defuse(f.Reason), "failed", "", ""})
			if failures = failures[1:]; len(failures) == 0 {
				if failures, err = next(f.ID); err != nil {
					return err
				}
			}
			continue
		}
		s := skips[0]
		_ = out.Write([]string{strconv.Itoa(s.Line), "", "", defuse(s.Reason), s.Action, s.MatchedID, defuse(s.MatchedNumber)})
		if skips = skips[1:]; len(skips) == 0 && page > 0 {
			if skips, page, err = skipped(page); err != nil {
				return err
			}
		}
	}
	out.Flush()
	return out.Error()
}
