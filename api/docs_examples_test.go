package api_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// The docs' examples are checked here, so that they cannot drift from the
// server. Every Markdown file of the guides (README.md, docs/, deploy/README.md)
// is read; in all of them:
//
//   - a customer number in the default pattern (C2030-000001-2) carries the
//     check digit the server computes;
//   - no date lies before today (examples use dates relative to now or clearly
//     in the future, so none goes stale unnoticed);
//   - a relative link stays inside the repository and names a file that exists;
//   - no figure is dated by a working session ("session 9"): history lives in git;
//   - a fenced ```json block is an example this test runs: its info string is
//     `json request METHOD PATH` (a body the next response block sends) or
//     `json response METHOD PATH [status=N] [as=admin|manager|rep]` (what the
//     server answers), unless another test named in checkedElsewhere runs it;
//   - a shell block shows no answer inline ("# → {…}"): answers go in a
//     `json response` block, where they are checked.
//
// A response block is run in document order against a fresh server per file:
// its request is sent (with the body of the `json request` block or the curl
// command just before it, same method and path) and the answer must have the
// example's shape: the same keys at every level, and at each key the same kind
// of value (object, list, other). An object holding the key "…" shows only
// some of the keys: those it shows must exist. In a path, {id} is the id of the
// record last created in the collection the path names; in a body, a string
// "{customer_id}" (task, order, team, user …) is the id last created there;
// {timestamp} is the cursor the last pull answered.
// FIELDCRM_DOCS_DUMP=1 logs each answer, to write a new example from.

// docsRoot is the repository root, seen from this package's directory.
const docsRoot = ".."

// checkedElsewhere are the ```json blocks that other tests run, by info string.
var checkedElsewhere = map[string]string{
	"json skipped_rows": "TestImportsGuideExamples (api/imports_people_test.go)",
}

// elided is the key (or list element) by which an example says it shows only
// part of an object (or list).
const elided = "…"

// docFiles returns the guides, relative to the repository root.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "deploy/README.md"}
	guides, err := filepath.Glob(filepath.Join(docsRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range guides {
		rel, err := filepath.Rel(docsRoot, g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	if len(guides) < 5 {
		t.Fatalf("found only %d guides under docs/: is the test running from api/?", len(guides))
	}
	return files
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(docsRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// fence is one fenced code block of a Markdown file.
type fence struct {
	line int // of the opening fence, 1-based
	info string
	body string
}

// fences returns the fenced blocks of a Markdown text, in order.
func fences(text string) []fence {
	var out []fence
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		open := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(open, "```") {
			continue
		}
		f := fence{line: i + 1, info: strings.TrimSpace(strings.TrimPrefix(open, "```"))}
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		f.body = strings.Join(body, "\n")
		out = append(out, f)
	}
	return out
}

// customerNumberPattern finds numbers of the default shape: prefix, year,
// sequence, check digit.
var customerNumberPattern = regexp.MustCompile(`\b[A-Z]{1,6}\d{4}-\d{3,12}-\d\b`)

// wrongCheckDigits returns the customer numbers in text whose check digit is
// not the server's, each with the digit it should have.
func wrongCheckDigits(text string) []string {
	var bad []string
	for _, n := range customerNumberPattern.FindAllString(text, -1) {
		if !models.ValidCustomerNumber(n) {
			body := n[:len(n)-2]
			bad = append(bad, fmt.Sprintf("%s (the check digit is %d)", n, models.DammDigit(body)))
		}
	}
	return bad
}

// datePatterns find dates as the docs write them: ISO dates and times, ISO
// weeks and months, 2030/1/5 and 2030年1月5日. Each gives the last day the
// text stands for (the day, or the week's or the month's last day).
var datePatterns = []struct {
	re      *regexp.Regexp
	lastDay func(m []string) (time.Time, bool)
}{
	{regexp.MustCompile(`\b(\d{4})-(\d{2})-(\d{2})(?:\b|T)`), ymd},
	{regexp.MustCompile(`\b(\d{4})/(\d{1,2})/(\d{1,2})\b`), ymd},
	{regexp.MustCompile(`(\d{4})年(\d{1,2})月(\d{1,2})日`), ymd},
	{regexp.MustCompile(`\b(\d{4})-W(\d{2})\b`), func(m []string) (time.Time, bool) {
		year, week := docAtoi(m[1]), docAtoi(m[2])
		// Monday of ISO week 1 is the Monday on or before 4 January.
		jan4 := time.Date(year, 1, 4, 0, 0, 0, 0, time.UTC)
		monday := jan4.AddDate(0, 0, -((int(jan4.Weekday()) + 6) % 7))
		return monday.AddDate(0, 0, 7*(week-1)+6), week >= 1 && week <= 53
	}},
	// A month alone (the "2030-09" of a report's series), not the start of
	// a date or a customer number's year and sequence.
	{regexp.MustCompile(`(?:^|[^\d-])(\d{4})-(\d{2})(?:$|[^\d-])`), func(m []string) (time.Time, bool) {
		month := docAtoi(m[2])
		return time.Date(docAtoi(m[1]), time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC), month >= 1 && month <= 12
	}},
}

func docAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func ymd(m []string) (time.Time, bool) {
	year, month, day := docAtoi(m[1]), docAtoi(m[2]), docAtoi(m[3])
	d := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	return d, month >= 1 && month <= 12 && d.Day() == day
}

// pastDates returns the dates in text that lie before today; a week or a month
// is past once its last day is.
func pastDates(text string, today time.Time) []string {
	var past []string
	for _, p := range datePatterns {
		for _, m := range p.re.FindAllStringSubmatch(text, -1) {
			if last, ok := p.lastDay(m); ok && last.Before(today) {
				past = append(past, strings.Trim(m[0], " ,;:\"'()[]{}`T"))
			}
		}
	}
	return past
}

// linkPattern finds Markdown links; their targets are checked when relative.
var linkPattern = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// brokenLinks returns the relative links of doc (a path from the repository
// root) that leave the repository or name no file.
func brokenLinks(root, doc, text string) []string {
	var bad []string
	for _, m := range linkPattern.FindAllStringSubmatch(text, -1) {
		target, _, _ := strings.Cut(m[1], "#")
		if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		rel := filepath.Clean(filepath.Join(filepath.Dir(doc), target))
		if strings.HasPrefix(rel, "..") || filepath.IsAbs(target) {
			bad = append(bad, m[1]+" (outside the repository)")
			continue
		}
		if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
			bad = append(bad, m[1]+" (no such file)")
		}
	}
	return bad
}

// developmentHistory finds the marks of a diary rather than a guide: the
// working sessions figures were once measured in.
var developmentHistory = regexp.MustCompile(`(?i)\b(?:session|sprint|iteration) \d+\b`)

// inlineAnswer finds a response shown in a shell block, where no test reads it.
var inlineAnswer = regexp.MustCompile(`→\s*(\d{3}\s*)?[{\[]`)

func TestDocsCustomerNumbersDatesAndLinks(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for _, name := range docFiles(t) {
		text := readDoc(t, name)
		for _, n := range wrongCheckDigits(text) {
			t.Errorf("%s: customer number %s", name, n)
		}
		for _, d := range pastDates(text, today) {
			t.Errorf("%s: %s lies before today (%s): write dates relative to now or clearly in the future", name, d, today.Format(time.DateOnly))
		}
		for _, l := range brokenLinks(docsRoot, name, text) {
			t.Errorf("%s: link %s", name, l)
		}
		for _, h := range developmentHistory.FindAllString(text, -1) {
			t.Errorf("%s: %q: the docs say what is true now; history lives in git", name, h)
		}
		for _, f := range fences(text) {
			kind, _, _ := strings.Cut(f.info, " ")
			switch {
			case kind == "json":
				if _, ok := checkedElsewhere[f.info]; !ok && !strings.HasPrefix(f.info, "json request ") && !strings.HasPrefix(f.info, "json response ") {
					t.Errorf("%s:%d: ```%s: a JSON example must be a `json request METHOD PATH` or `json response METHOD PATH` block, so that it is run", name, f.line, f.info)
				}
				if !json.Valid([]byte(f.body)) {
					t.Errorf("%s:%d: ```%s is not valid JSON", name, f.line, f.info)
				}
			case kind == "sh" || kind == "bash" || kind == "":
				for i, line := range strings.Split(f.body, "\n") {
					if inlineAnswer.MatchString(line) {
						t.Errorf("%s:%d: an answer shown in a shell block (%q): put it in a ```json response block", name, f.line+1+i, strings.TrimSpace(line))
					}
				}
			}
		}
	}
}

// TestDocsCheckersCatchDrift shows that each check above fails on the drift it
// guards against: a wrong check digit, a past date, a link out of the
// repository, development history, a misspelt key.
func TestDocsCheckersCatchDrift(t *testing.T) {
	today := time.Date(2030, 6, 15, 0, 0, 0, 0, time.UTC)
	if got := wrongCheckDigits("numbers such as C2026-000001-3 and C2026-000001-5"); len(got) != 1 || !strings.HasPrefix(got[0], "C2026-000001-3 ") {
		t.Errorf("wrong check digits found: %v, want only C2026-000001-3", got)
	}
	past := pastDates(`due "2030-06-14T10:00:00Z", 2030/6/14, 2030年6月14日, week 2030-W23, month 2030-05, `+
		`not past: 2030-06-15, 2030-W24, 2030-06, C2030-000001-2, 2030-12-31`, today)
	if want := []string{"2030-06-14", "2030/6/14", "2030年6月14日", "2030-W23", "2030-05"}; !slices.Equal(past, want) {
		t.Errorf("past dates found: %q, want %q", past, want)
	}
	if got := developmentHistory.FindAllString("measured in Session 9; the session of a login", -1); len(got) != 1 {
		t.Errorf("development history found: %q, want only Session 9", got)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "docs", "sync.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	links := brokenLinks(root, "README.md", "[sync](docs/sync.md) [gone](docs/gone.md) [out](../shared/DESIGN.md) [web](https://example.com)")
	if len(links) != 2 || !strings.HasPrefix(links[0], "docs/gone.md") || !strings.HasPrefix(links[1], "../shared/DESIGN.md") {
		t.Errorf("broken links found: %q", links)
	}

	var got, misspelt, partial any
	mustJSON(t, `{"id": "x", "number": "C", "phones": [{"label": "office", "number": "+86"}], "owner": {"id": "u"}}`, &got)
	mustJSON(t, `{"id": "x", "numbr": "C", "phones": [{"label": "office", "number": "+86"}], "owner": {"id": "u"}}`, &misspelt)
	mustJSON(t, `{"id": "x", "phones": [{"label": "office", "…": ""}], "…": ""}`, &partial)
	if d := shapeDiff("", misspelt, got); len(d) != 2 {
		t.Errorf("a misspelt key gives %q, want it reported as unknown and the real one as missing", d)
	}
	if d := shapeDiff("", partial, got); len(d) != 0 {
		t.Errorf("an elided example gives %q, want no difference", d)
	}
	var wrongKind any
	mustJSON(t, `{"id": "x", "number": "C", "phones": {"label": "office"}, "owner": {"id": "u"}}`, &wrongKind)
	if d := shapeDiff("", wrongKind, got); len(d) != 1 {
		t.Errorf("an object shown for a list gives %q, want one difference", d)
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatal(err)
	}
}

// shapeDiff compares an example (doc) with the server's answer (got): the
// same keys at each level and, under each, the same kind of value. null on
// either side matches any value (a field the example's record happens to
// have set or not).
func shapeDiff(at string, doc, got any) []string {
	if doc == nil || got == nil {
		return nil
	}
	switch d := doc.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: the example shows an object, the server answers %s", where(at), kindOf(got))}
		}
		var diffs []string
		_, partial := d[elided]
		for _, k := range sortedKeys(d) {
			if k == elided {
				continue
			}
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: the server answers no key %q", where(at), k))
				continue
			}
			diffs = append(diffs, shapeDiff(at+"."+k, d[k], gv)...)
		}
		if !partial {
			for _, k := range sortedKeys(g) {
				if _, ok := d[k]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s: the example lacks the key %q (or add %q to show part of the object)", where(at), k, elided))
				}
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: the example shows a list, the server answers %s", where(at), kindOf(got))}
		}
		var diffs []string
		for i, item := range d {
			if item == elided {
				continue
			}
			if len(g) == 0 {
				return append(diffs, fmt.Sprintf("%s: the server answers an empty list, so the example's items cannot be checked: make the document's earlier examples create them", where(at)))
			}
			// Lists may mix shapes (an audit entry's old and new values): an
			// example item must have the shape of one of the server's items.
			if slices.ContainsFunc(g, func(gv any) bool { return len(shapeDiff("", item, gv)) == 0 }) {
				continue
			}
			diffs = append(diffs, shapeDiff(fmt.Sprintf("%s[%d]", at, i), item, g[min(i, len(g)-1)])...)
		}
		return diffs
	default:
		switch got.(type) {
		case map[string]any, []any:
			return []string{fmt.Sprintf("%s: the example shows %s, the server answers %s", where(at), kindOf(doc), kindOf(got))}
		}
		return nil
	}
}

func where(at string) string {
	if at == "" {
		return "top level"
	}
	return strings.TrimPrefix(at, ".")
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case nil:
		return "null"
	}
	return "a value"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestDocsResponseExamplesHaveTheServersShape runs every request and response
// example of the guides, file by file, each file against a server of its own.
func TestDocsResponseExamplesHaveTheServersShape(t *testing.T) {
	for _, name := range docFiles(t) {
		blocks := fences(readDoc(t, name))
		if !slices.ContainsFunc(blocks, func(f fence) bool { return strings.HasPrefix(f.info, "json response ") }) {
			continue
		}
		t.Run(name, func(t *testing.T) { runDocExamples(t, name, blocks) })
	}
}

// docWorld is what a document's examples run against: one tenant with an
// admin, a manager, a rep of the manager's team and a customer of the rep,
// and the ids of the records the examples created.
type docWorld struct {
	h      *harness
	as     map[string]account
	lastID map[string]string // collection → id of the record last created in it
	// cursor is the timestamp of the last sync pull, what {timestamp} stands for.
	cursor string
}

func runDocExamples(t *testing.T, name string, blocks []fence) {
	h := newHarness(t)
	admin := h.signup("Docs Trading", "admin@docs.example")
	manager := h.createUser(admin, "manager@docs.example", "manager", "")
	team := h.createTeam(admin, "North", manager.id)
	rep := h.createUser(admin, "rep@docs.example", "rep", team)
	// A customer of the rep, so that a guide can show a record that needs
	// one (a task, a device's reminder) without creating it first.
	r := h.do("POST", "/v1/customers", rep.access, map[string]any{"name": "Docs Fixture Pumps Ltd"})
	h.expect(r, 201, "create the fixture customer")
	w := &docWorld{h: h, as: map[string]account{"admin": admin, "manager": manager, "rep": rep},
		lastID: map[string]string{"teams": team, "users": rep.id, "customers": r.json(t)["id"].(string)}}

	for i, f := range blocks {
		if req, ok := strings.CutPrefix(f.info, "json request "); ok {
			// A request body no response example follows would never be sent.
			if i+1 == len(blocks) || !strings.HasPrefix(blocks[i+1].info, "json response "+req) {
				t.Errorf("%s:%d: ```%s is not followed by a ```json response %s block", name, f.line, f.info, req)
			}
			continue
		}
		rest, ok := strings.CutPrefix(f.info, "json response ")
		if !ok {
			continue
		}
		ex, err := parseResponseInfo(rest)
		if err != nil {
			t.Errorf("%s:%d: ```%s: %v", name, f.line, f.info, err)
			continue
		}
		var body any
		if i > 0 {
			body, err = requestBody(blocks[i-1], ex.method, ex.path)
			if err != nil {
				t.Errorf("%s:%d: the request before ```%s: %v", name, blocks[i-1].line, f.info, err)
				continue
			}
		}
		w.check(t, fmt.Sprintf("%s:%d", name, f.line), ex, body, f.body)
	}
}

// responseExample is what a `json response` info string asks for.
type responseExample struct {
	method, path string
	status       int // 0: any 2xx
	as           string
}

func parseResponseInfo(s string) (responseExample, error) {
	fields := strings.Fields(s)
	if len(fields) < 2 || !strings.HasPrefix(fields[1], "/") {
		return responseExample{}, fmt.Errorf("want `json response METHOD PATH [status=N] [as=ROLE]`")
	}
	ex := responseExample{method: fields[0], path: fields[1], as: "admin"}
	for _, f := range fields[2:] {
		key, value, _ := strings.Cut(f, "=")
		switch key {
		case "status":
			ex.status = docAtoi(value)
		case "as":
			ex.as = value
		default:
			return ex, fmt.Errorf("unknown option %q", f)
		}
	}
	return ex, nil
}

// curlURL, curlMethod and curlBody find a curl command's URL, method and -d
// body in a shell block.
var (
	curlURL    = regexp.MustCompile(`localhost:8080(/[^\s'"]*)`)
	curlMethod = regexp.MustCompile(`-X\s+([A-Z]+)`)
	curlBody   = regexp.MustCompile(`(?s)-d\s+'([^']*)'`)
	// placeholders in paths: $VAR, ${VAR} and {name} all stand for an id.
	pathPlaceholder = regexp.MustCompile(`\$\{?[A-Za-z_]+\}?|\{[a-z_]+\}`)
)

// requestBody returns the body an example's request sends: that of the block
// just before it when that block is its request (a `json request` block of
// the same method and path, or a shell block with a curl command for it), else
// none.
func requestBody(prev fence, method, path string) (any, error) {
	same := func(m, p string) bool {
		return m == method && pathPlaceholder.ReplaceAllString(p, "{}") == pathPlaceholder.ReplaceAllString(path, "{}")
	}
	if rest, ok := strings.CutPrefix(prev.info, "json request "); ok {
		fields := strings.Fields(rest)
		if len(fields) != 2 || !same(fields[0], fields[1]) {
			return nil, nil
		}
		var body any
		return body, json.Unmarshal([]byte(prev.body), &body)
	}
	if prev.info != "sh" {
		return nil, nil
	}
	for _, cmd := range strings.Split(strings.ReplaceAll(prev.body, "\\\n", " "), "\ncurl") {
		u := curlURL.FindStringSubmatch(cmd)
		if u == nil {
			continue
		}
		m := "GET"
		b := curlBody.FindStringSubmatch(cmd)
		if b != nil {
			m = "POST"
		}
		if x := curlMethod.FindStringSubmatch(cmd); x != nil {
			m = x[1]
		}
		if !same(m, u[1]) || b == nil {
			continue
		}
		var body any
		if err := json.Unmarshal([]byte(b[1]), &body); err != nil {
			return nil, fmt.Errorf("curl -d body: %w", err)
		}
		return body, nil
	}
	return nil, nil
}

// idPlaceholder is {id} in a path, or "{customer_id}" and the like anywhere.
var idPlaceholder = regexp.MustCompile(`\{([a-z]+)_id\}`)

// resolve puts the ids of the records created so far into a path or a body.
func (w *docWorld) resolve(t *testing.T, where, s string) string {
	t.Helper()
	// In /v1/<collection>/{id}, {id} is the collection's last record.
	parts := strings.Split(s, "/")
	for i, p := range parts {
		if p == "{id}" && i > 0 {
			parts[i] = w.id(t, where, parts[i-1])
		}
	}
	s = strings.ReplaceAll(strings.Join(parts, "/"), "{timestamp}", w.cursor)
	return idPlaceholder.ReplaceAllStringFunc(s, func(m string) string {
		return w.id(t, where, idPlaceholder.FindStringSubmatch(m)[1]+"s")
	})
}

func (w *docWorld) id(t *testing.T, where, collection string) string {
	t.Helper()
	id, ok := w.lastID[collection]
	if !ok {
		t.Errorf("%s: no %s record created before this example", where, collection)
	}
	return id
}

// check sends an example's request and compares the answer with it.
func (w *docWorld) check(t *testing.T, where string, ex responseExample, body any, example string) {
	t.Helper()
	who, ok := w.as[ex.as]
	if !ok {
		t.Errorf("%s: as=%s: want admin, manager or rep", where, ex.as)
		return
	}
	path := w.resolve(t, where, ex.path)
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		body = []byte(w.resolve(t, where, string(raw)))
	}
	r := w.h.do(ex.method, path, who.access, body, "Content-Type", "application/json")
	if os.Getenv("FIELDCRM_DOCS_DUMP") == "1" {
		t.Logf("%s: %s %s → %d\n%s", where, ex.method, path, r.status, r.body)
	}
	if (ex.status == 0 && (r.status < 200 || r.status > 299)) || (ex.status != 0 && r.status != ex.status) {
		want := "2xx"
		if ex.status != 0 {
			want = strconv.Itoa(ex.status)
		}
		t.Errorf("%s: %s %s answers %d, the example says %s: %s", where, ex.method, path, r.status, want, r.body)
		return
	}
	var got, doc any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Errorf("%s: %s %s: the answer is not JSON: %s", where, ex.method, path, r.body)
		return
	}
	if err := json.Unmarshal([]byte(example), &doc); err != nil {
		t.Errorf("%s: the example is not JSON: %v", where, err)
		return
	}
	for _, d := range shapeDiff("", doc, got) {
		t.Errorf("%s: %s %s: %s", where, ex.method, path, d)
	}
	if m, ok := got.(map[string]any); ok {
		if ts, ok := m["timestamp"].(float64); ok {
			w.cursor = strconv.FormatInt(int64(ts), 10)
		}
	}
	// A record created here is what later examples' {id} names.
	if ex.method == "POST" {
		if m, ok := got.(map[string]any); ok {
			if id, ok := m["id"].(string); ok {
				if coll := strings.Split(strings.Trim(path, "/"), "/"); len(coll) == 2 {
					w.lastID[strings.SplitN(coll[1], "?", 2)[0]] = id
				}
			}
		}
	}
}

// TestReadmeConfigurationTableListsEverySetting compares the README's table
// of environment variables with the ones cmd/fieldcrm/config.go reads.
func TestReadmeConfigurationTableListsEverySetting(t *testing.T) {
	setting := regexp.MustCompile(`"((?:FIELDCRM|FCM|MONGODB|REDIS|FERRETDB|OTEL)_[A-Z_]+)"`)
	read := map[string]bool{}
	for _, m := range setting.FindAllStringSubmatch(readDoc(t, "cmd/fieldcrm/config.go"), -1) {
		read[m[1]] = true
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]+)` \\|")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(readDoc(t, "README.md"), -1) {
		documented[m[1]] = true
	}
	if len(read) < 10 {
		t.Fatalf("found only %d settings in config.go: %v", len(read), read)
	}
	for _, k := range sortedKeys(anyMap(read)) {
		if !documented[k] {
			t.Errorf("config.go reads %s; the README's configuration table does not list it", k)
		}
	}
	for _, k := range sortedKeys(anyMap(documented)) {
		if !read[k] {
			t.Errorf("the README's configuration table lists %s; config.go does not read it", k)
		}
	}
}

func anyMap(m map[string]bool) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
