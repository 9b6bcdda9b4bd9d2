package sheets_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fieldcrm/fieldcrm/internal/crm/sheets"
	"github.com/fieldcrm/fieldcrm/models"
)

// TestReportListsFailedAndSkippedRowsInLineOrder: the report file merges the
// failed rows and the skipped ones, each read a page at a time, by line.
func TestReportListsFailedAndSkippedRowsInLineOrder(t *testing.T) {
	failures := [][]models.ImportFailure{
		{{ID: "a", Line: 2, Column: "手机", Value: "12", Reason: "bad phone"}, {ID: "b", Line: 2, Column: "邮箱", Value: "x", Reason: "bad e-mail"}},
		{{ID: "c", Line: 7, Column: "阶段", Value: "won", Reason: "bad stage"}},
	}
	skipped := [][]models.SkippedRow{
		{{Line: 3, Action: "skipped", Reason: "imported before", MatchedID: "c1", MatchedNumber: "C-1"}},
		{{Line: 5, Action: "merged", Reason: "matches C-2 Acme (phone +8613800138000); merged into it", MatchedID: "c2", MatchedNumber: "C-2"},
			{Line: 9, Action: "skipped", Reason: "matches line 5 of the file (email a@b.cn)"}},
	}
	nextFailures := func(after string) ([]models.ImportFailure, error) {
		if after == "b" {
			return failures[1], nil
		}
		return nil, nil
	}
	skippedPages := func(page int) ([]models.SkippedRow, int, error) {
		if page > len(skipped) {
			return nil, 0, nil
		}
		return skipped[page-1], page + 1, nil
	}
	var out bytes.Buffer
	if err := sheets.WriteFailures(&out, failures[0], nextFailures, skippedPages); err != nil {
		t.Fatal(err)
	}
	want := "\uFEFFline,column,value,reason,outcome,matched_id,matched_number\n" +
		"2,手机,12,bad phone,failed,,\n" +
		"2,邮箱,x,bad e-mail,failed,,\n" +
		"3,,,imported before,skipped,c1,C-1\n" +
		"5,,,matches C-2 Acme (phone +8613800138000); merged into it,merged,c2,C-2\n" +
		"7,阶段,won,bad stage,failed,,\n" +
		"9,,,matches line 5 of the file (email a@b.cn),skipped,,\n"
	if got := out.String(); got != want {
		t.Fatalf("report:\n%s\nwant:\n%s", got, strings.TrimSpace(want))
	}
}
