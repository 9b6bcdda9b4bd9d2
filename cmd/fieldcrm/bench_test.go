package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestBenchCommandsRunAtATinySize runs each `fieldcrm bench` command on a
// few records, so that the bench code (some 960 lines no product path runs)
// keeps working between the runs that measure with it.
func TestBenchCommandsRunAtATinySize(t *testing.T) {
	cases := []struct {
		name string
		args []string
		// rows are patterns each of which must match a line of the output.
		rows []string
	}{
		{"sync", []string{"bench", "sync", "--customers", "20", "--interactions", "40", "--edits", "5", "--noop-pulls", "2", "--page", "10", "--push-parallel", "1,4"}, []string{
			`^fieldcrm bench sync: FerretDB on \w+, 20 customers \+ 40 interactions, page 10$`,
			`^initial sync \(pull from null\) +60 `,
			`^  heap in use after each page, MiB( \d+){6}$`, // 60 records, pages of 10
			`^push of 5 offline edits \(1 at once\) +5 `,
			`^push of 5 offline edits \(4 at once\) +5 `,
			`^delta pull of 5 server edits +5 `,
			`^no-op pull +0 `,
		}},
		{"reminders", []string{"bench", "reminders", "--burst", "20", "--burst-within", "2s", "--steady", "5", "--reps", "3", "--workers", "2", "--timeline"}, []string{
			`^fieldcrm bench reminders: FerretDB on \w+, 2 workers, 3 reps$`,
			`^seeded 25 reminders in `,
			`^burst: 20 due within 2s +20 +20 `,
			`^wall \(UTC\) +pushes +max late$`,
			`^steady: 5 at 1,000 per minute +5 +5 `,
		}},
		{"import", []string{"bench", "import", "--rows", "160"}, []string{
			`^fieldcrm bench import: FerretDB on \w+, 160 rows$`,
			// Rows 0 and 97 have no phone; row 151 repeats row 150's e-mail.
			`^import .* created 157, skipped 1, failed 2; peak heap \d+ MiB$`,
			`^export CSV +\S+ +\d+ +\d+ KiB$`,
			`^export XLSX +\S+ +\d+ +\d+ KiB$`,
			`^customers report +\S+ +\d+ +\d+ KiB$`,
			`^RFM report +\S+ +\d+ +\d+ KiB$`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vars := isolatedVars(t, "bench")
			vars["REDIS_URL"] = os.Getenv("REDIS_URL")
			out := &syncWriter{w: &bytes.Buffer{}}
			if err := run(context.Background(), c.args, func(k string) string { return vars[k] }, out, out); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			got := out.String()
			for _, row := range c.rows {
				if !regexp.MustCompile(`(?m)` + row).MatchString(got) {
					t.Errorf("no line matches %s in:\n%s", row, got)
				}
			}
			if strings.Contains(got, "DUPLICATE") {
				t.Errorf("a reminder was pushed twice:\n%s", got)
			}
		})
	}
}
