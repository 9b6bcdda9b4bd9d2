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

// WriteFailures writes an import's failed rows as CSV (line, column, value,
// reason), UTF-8 with a byte order mark for Excel, starting with first.
// The values are the spreadsheet's own, so formulas among them are defused.
func WriteFailures(w io.Writer, first []models.ImportFailure, next FailurePages) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return err
	}
	out := csv.NewWriter(w)
	_ = out.Write([]string{"line", "column", "value", "reason"})
	for page := first; len(page) > 0; {
		for _, f := range page {
			_ = out.Write([]string{strconv.Itoa(f.Line), defuse(f.Column), defuse(f.Value), defuse(f.Reason)})
		}
		var err error
		if page, err = next(page[len(page)-1].ID); err != nil {
			return err
		}
	}
	out.Flush()
	return out.Error()
}
