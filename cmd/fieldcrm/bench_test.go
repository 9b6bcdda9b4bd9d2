package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
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
		{"api", []string{"bench", "api", "--customers", "100", "--interactions", "300", "--runs", "1", "--creates", "20", "--clients", "2"}, apiBenchRows},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vars := isolatedVars(t, "bench")
			vars["REDIS_URL"] = os.Getenv("REDIS_URL")
			out := &syncWriter{w: &bytes.Buffer{}}
			kept := filepath.Join(t.TempDir(), "kept")
			args := c.args
			if c.name == "api" {
				args = append(slices.Clone(args), "--data-dir", kept)
			}
			if err := run(context.Background(), args, func(k string) string { return vars[k] }, out, out); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if c.name == "api" && vars["FERRETDB_POSTGRESQL_URL"] == "" {
				// The seeded tenant stays for a later serve of it.
				if n := keptCustomers(t, filepath.Join(kept, "ferretdb", "bench.sqlite")); n < 100 {
					t.Errorf("the kept data directory holds %d customers, want the 100 seeded and those created", n)
				}
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

// keptCustomers counts the customers in the embedded SQLite file path.
func keptCustomers(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = 'customers'`).Scan(&table); err != nil {
		t.Fatalf("the kept data directory: %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM "` + table + `"`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// apiBenchRows are the lines `bench api` must print: its scale, and a figure
// (a time, a rate or TIMEOUT) and a verdict for every class.
var apiBenchRows = func() []string {
	rows := []string{
		`^fieldcrm bench api: FerretDB on \w+, 100 customers \+ 300 interactions \+ 20 tasks, each read 1 times`,
		`^seeded 100 customers in `, `^seeded 300 interactions in `, `^seeded 20 tasks in `,
		`^class +p50 +p95 +plain p95 +ratio `,
	}
	latency := `\S+ ms +\S+ ms +`
	compared := latency + `\S+ ms +\S+× +\d+/\d+ +p95 ≤ 50 ms, ≤ 3× plain +(PASS|MISS)$`
	for _, class := range []string{`list page \(admin\)`, `next page, after= \(admin\)`, `list page \(manager\)`,
		`next page, after= \(manager\)`, `list page \(rep\)`, `next page, after= \(rep\)`,
		`filter stage`, `filter customer_type`, `filter source`, `filter region`, `filter industry`, `filter owner_id`,
		`filter team_id`, `filter value_tier`, `filter credit_rating`, `filter number`, `filter tag`,
		`filter duplicate=true`, `filter pool=true`, `filter updated_since`,
		`sort=name`, `sort=-name`, `sort=number`, `sort=-number`, `sort=last_interaction_at`, `sort=-last_interaction_at`,
		`next page, sort=name`, `search number fragment`, `search Chinese name fragment`, `search Chinese name fragment \(rep\)`,
		`search Latin name fragment, any case`, `search e-mail, capitalised`, `search social handle`, `search phone, typed otherwise`} {
		rows = append(rows, `^`+class+` +`+compared)
	}
	for _, class := range []string{`interactions channel`, `interactions user_id`, `interactions from/to \(a month\)`,
		`interactions q= \(content\)`, `tasks assignee_id`, `tasks status`, `tasks due_from/due_to \(a month\)`} {
		rows = append(rows, `^`+class+` +`+latency+`- +- +\d+ +p95 ≤ 50 ms +(PASS|MISS)$`)
	}
	rows = append(rows, `^duplicates +`+latency+`- +- +\d+ +p95 ≤ 100 ms +(PASS|MISS)$`)
	for _, report := range []string{"customers", "funnel", "sales", "activity", "service", "loyalty", "rfm"} {
		rows = append(rows, `^report `+report+` +`+latency+`- +- +- +p95 ≤ 1000 ms +(PASS|MISS)$`)
	}
	return append(rows,
		`^export CSV, rows/s +\d+/s +- +- +- +100 +≥ 20,000/s +(PASS|MISS)$`,
		`^first sync pull \(rep\), records/s +\d+/s +1 pages, \d+ KiB +- +- +\d+ +≥ 40,000/s +(PASS|MISS)$`,
		`^whole first sync, turbo=true \(rep\), records/s +\d+/s +1 pages, \d+ KiB +- +- +\d+ +≥ 40,000/s +(PASS|MISS)$`,
		`^create POST /v1/customers \(2 clients\) +\d+/s +each p95 \S+ ms +- +- +20 +≥ 1,000/s +(PASS|MISS)$`,
		`^create POST /v1/sync/push \(1,000 a push\) +\d+/s +- +- +- +20 +≥ 1,000/s +(PASS|MISS)$`,
		`^peak RSS \(VmHWM\) after seeding +\d+ MiB +`,
		`^\d+ of 55 targets met$`,
	)
}()

// A percentile is the nearest rank: the p95 of three reads is the slowest,
// their p50 the middle one, and of a hundred the 95th.
func TestPercentileIsTheNearestRank(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i
	}
	for _, tc := range []struct {
		reads []time.Duration
		p     int
		want  time.Duration
	}{
		{ms(30, 10, 20), 95, 30 * time.Millisecond},
		{ms(30, 10, 20), 50, 20 * time.Millisecond},
		{ms(7), 95, 7 * time.Millisecond},
		{ms(hundred...), 95, 95 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(5, 1), 50, 1 * time.Millisecond},
	} {
		if got := percentile(tc.reads, tc.p); got != tc.want {
			t.Errorf("p%d of %v = %v, want %v", tc.p, tc.reads, got, tc.want)
		}
	}
}
