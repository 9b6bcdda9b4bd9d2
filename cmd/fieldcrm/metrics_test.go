package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// TestAlertsAndDashboardNameMetricsThatExist runs serve on the embedded
// engines, sends a reminder through the fake FCM server, pulls and pushes as
// a phone, imports a file and lets the reminder reconciliation run at
// start-up, then scrapes the metrics port: every series the alert rules
// (deploy/prometheus/alerts.yaml) and the dashboard (deploy/grafana/
// fieldcrm.json) name must be there, with the labels they match on. The
// rules file must have Prometheus' rule-group structure.
func TestAlertsAndDashboardNameMetricsThatExist(t *testing.T) {
	rules := readAlertRules(t, "../../deploy/prometheus/alerts.yaml")
	panels := readDashboardQueries(t, "../../deploy/grafana/fieldcrm.json")

	fcm := newBenchFCM()
	t.Cleanup(fcm.srv.Close)
	vars := isolatedVars(t, "metrics")
	vars["FCM_PROJECT_ID"], vars["FCM_ENDPOINT"] = "metrics", fcm.srv.URL
	p := startServe(t, vars)
	defer p.stop(t)
	r := &replica{name: "metrics", base: p.base}

	email := "ops@metrics.test"
	admin := signup(t, r, "Metrics Ltd", email)["access_token"].(string)
	r.must(t, 200, "POST", "/v1/devices", admin, map[string]any{"device_id": "ops-phone", "fcm_token": "ops-token", "platform": "android"})
	customer := crashCustomer(t, r, admin, "Reminded Co")
	r.must(t, 201, "POST", "/v1/tasks", admin, map[string]any{"customer_id": customer, "title": "Call",
		"due_at": time.Now().Add(200 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
	phone := newHandset(t, r, email, "ops-phone")
	phone.pull(t, r)
	if status, accepted, m := phone.push(t, r, map[string][]map[string]any{
		"loyalty_entries": {crashPointsRow("metrics-points-1", customer, "earn", 10)},
	}); status != 200 || len(accepted["loyalty_entries"]) != 1 {
		t.Fatalf("push: %d %v", status, m)
	}
	crashImport(t, r, admin, []byte("客户编号,客户名称,类型\r\nM-1,Imported One,公司\r\nM-2,Imported Two,公司\r\n"))
	waitFor(t, "the reminder pushed", func() bool {
		fcm.mu.Lock()
		defer fcm.mu.Unlock()
		return len(fcm.got) > 0
	})

	var scraped map[string]*dto.MetricFamily
	waitFor(t, "the reminder counted", func() bool {
		scraped = scrapeMetrics(t, p.metrics+"/metrics")
		return counterSum(scraped["fieldcrm_reminders_sent_total"]) > 0
	})
	// What the steps above must have counted, so the test fails when an
	// instrument is left unwired.
	for name, atLeast := range map[string]float64{
		"fieldcrm_pushes_total": 1, "fieldcrm_import_rows_total": 2, "fieldcrm_reminder_lateness_seconds": 1,
		"fieldcrm_sync_pull_duration_seconds": 1, "fieldcrm_sync_push_records": 1, "fieldcrm_sync_watermark_lag_changes": 1,
		"fieldcrm_job_duration_seconds": 1, "fieldcrm_db_call_duration_seconds": 1, "fieldcrm_redis_call_duration_seconds": 1,
	} {
		if got := counterSum(scraped[name]); got < atLeast {
			t.Errorf("%s counts %v after the steps, want at least %v", name, got, atLeast)
		}
	}
	// The pull's changes are read in SQL, around the driver: timed too.
	if f := scraped["fieldcrm_db_call_duration_seconds"]; f == nil || !hasLabel(f, "operation", "direct_changes") {
		t.Errorf("the pull's read of changes is not timed: %v", f)
	}
	if f := scraped["fieldcrm_job_last_success_timestamp_seconds"]; f == nil || !hasLabel(f, "job", "reminder-reconcile") {
		t.Errorf("no last success of the start-up reminder reconciliation: %v", f)
	}

	queries := map[string]string{}
	for _, r := range rules {
		queries["alert "+r.name] = r.expr
	}
	for title, expr := range panels {
		queries["panel "+title] = expr
	}
	for where, expr := range queries {
		refs, err := promQLSeries(expr)
		if err != nil {
			t.Errorf("%s: %v in %s", where, err, expr)
			continue
		}
		if len(refs) == 0 {
			t.Errorf("%s names no series: %s", where, expr)
		}
		for _, ref := range refs {
			if ref.name == "up" { // made by Prometheus for every target
				continue
			}
			family := familyOf(scraped, ref.name)
			if family == nil {
				t.Errorf("%s: no metric %s is served (expr %s)", where, ref.name, expr)
				continue
			}
			for _, label := range ref.labels {
				if !hasLabel(family, label, "") {
					t.Errorf("%s: metric %s has no label %q", where, ref.name, label)
				}
			}
		}
	}
}

// alertRule is one rule of a rules file, as the test needs it.
type alertRule struct{ name, expr string }

// readAlertRules decodes a Prometheus rules file strictly (an unknown or
// misspelt key fails) and checks its structure: named groups, each rule an
// alert with an expression and a severity, durations Prometheus reads.
func readAlertRules(t *testing.T, path string) []alertRule {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval,omitempty"`
			Rules    []struct {
				Alert       string            `json:"alert,omitempty"`
				Record      string            `json:"record,omitempty"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(raw, &file); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(file.Groups) == 0 {
		t.Fatalf("%s has no rule groups", path)
	}
	duration := regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	var rules []alertRule
	groups, alerts := map[string]bool{}, map[string]bool{}
	for _, g := range file.Groups {
		if g.Name == "" || groups[g.Name] || len(g.Rules) == 0 {
			t.Errorf("group %q: a group needs a unique name and rules", g.Name)
		}
		groups[g.Name] = true
		for _, rule := range g.Rules {
			switch {
			case rule.Record != "":
				t.Errorf("group %s: recording rule %s: the file holds alerts only", g.Name, rule.Record)
			case rule.Alert == "" || alerts[rule.Alert]:
				t.Errorf("group %s: an alert needs a unique name, got %q", g.Name, rule.Alert)
			case strings.TrimSpace(rule.Expr) == "":
				t.Errorf("alert %s has no expr", rule.Alert)
			case rule.For != "" && !duration.MatchString(rule.For):
				t.Errorf("alert %s: for %q is not a duration", rule.Alert, rule.For)
			case rule.Labels["severity"] != "page" && rule.Labels["severity"] != "ticket":
				t.Errorf("alert %s: severity %q, want page or ticket", rule.Alert, rule.Labels["severity"])
			case rule.Annotations["summary"] == "":
				t.Errorf("alert %s has no summary", rule.Alert)
			}
			alerts[rule.Alert] = true
			rules = append(rules, alertRule{name: rule.Alert, expr: rule.Expr})
		}
	}
	return rules
}

// readDashboardQueries returns the PromQL of every panel of a Grafana
// dashboard, rows' panels included, by panel title and query.
func readDashboardQueries(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Title  string            `json:"title"`
		UID    string            `json:"uid"`
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("%s: the dashboard needs a title and a uid", path)
	}
	out := map[string]string{}
	var walk func([]json.RawMessage)
	walk = func(list []json.RawMessage) {
		for _, r := range list {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: a panel: %v", path, err)
			}
			walk(p.Panels)
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, target := range p.Targets {
				out[p.Title+" "+target.RefID] = target.Expr
			}
		}
	}
	walk(dash.Panels)
	if len(out) == 0 {
		t.Fatalf("%s has no queries", path)
	}
	return out
}

// seriesRef is a metric a PromQL expression reads, and the labels it
// matches on.
type seriesRef struct {
	name   string
	labels []string
}

// promQLWords are PromQL's keywords, and the label lists they take.
var promQLWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
	"group_right": true, "and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true}

// promQLSeries reads enough PromQL to find the metrics an expression names:
// identifiers followed by a selector's braces, a range's brackets, or by
// nothing that makes them a function, an aggregation's label list or a
// keyword. Strings, label matchers, durations and numbers are skipped. It
// fails on unbalanced brackets or an unclosed string.
func promQLSeries(expr string) ([]seriesRef, error) {
	var refs []seriesRef
	var stack []byte
	closing := map[byte]byte{')': '(', ']': '[', '}': '{'}
	labelList := false // the parenthesis after by, without, on, ignoring…
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end := strings.IndexByte(expr[i+1:], c)
			for end >= 0 && c != '`' && expr[i+end] == '\\' {
				next := strings.IndexByte(expr[i+end+2:], c)
				if next < 0 {
					end = -1
					break
				}
				end += next + 1
			}
			if end < 0 {
				return nil, fmt.Errorf("unclosed string at %d", i)
			}
			i += end + 2
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
			if c == '[' { // a range or a subquery: durations only
				end := strings.IndexByte(expr[i:], ']')
				if end < 0 {
					return nil, fmt.Errorf("unclosed [ at %d", i)
				}
				i += end
				continue
			}
			if c == '(' && labelList {
				end := strings.IndexByte(expr[i:], ')')
				if end < 0 {
					return nil, fmt.Errorf("unclosed ( at %d", i)
				}
				stack = stack[:len(stack)-1]
				i += end + 1
				labelList = false
				continue
			}
			i++
		case c == ')' || c == ']' || c == '}':
			if len(stack) == 0 || stack[len(stack)-1] != closing[c] {
				return nil, fmt.Errorf("unbalanced %c at %d", c, i)
			}
			stack = stack[:len(stack)-1]
			i++
		case c >= '0' && c <= '9' || c == '.': // a number: 0.99, 1e18, 0x1f
			for i < len(expr) && (isIdentStart(expr[i]) || expr[i] >= '0' && expr[i] <= '9' || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && (isIdentStart(expr[j]) || expr[j] >= '0' && expr[j] <= '9' || expr[j] == ':') {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\n' || expr[k] == '\t') {
				k++
			}
			next := byte(0)
			if k < len(expr) {
				next = expr[k]
			}
			nextWord := ""
			for l := k; l < len(expr) && isIdentStart(expr[l]); l++ {
				nextWord = expr[k : l+1]
			}
			switch {
			case nextWord == "by" || nextWord == "without":
				// an aggregation with its label list first: sum by (le) (…)
			case promQLWords[strings.ToLower(word)]:
				labelList = word != "and" && word != "or" && word != "unless" && word != "offset" && word != "bool"
			case next == '(':
				// a function or an aggregation
			case len(stack) > 0 && stack[len(stack)-1] == '{':
				// a label name inside a selector: read with its metric
			default:
				ref := seriesRef{name: word}
				if next == '{' {
					end := strings.IndexByte(expr[k:], '}')
					if end < 0 {
						return nil, fmt.Errorf("unclosed { at %d", k)
					}
					for _, m := range regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`).FindAllStringSubmatch(expr[k:k+end], -1) {
						ref.labels = append(ref.labels, m[1])
					}
				}
				refs = append(refs, ref)
			}
			i = j
		default:
			i++
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unclosed %c", stack[len(stack)-1])
	}
	return refs, nil
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// scrapeMetrics gets url and parses Prometheus' text format.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET %s: not the text format: %v", url, err)
	}
	return families
}

// familyOf finds the family a series name belongs to: its own, or the
// histogram's or summary's whose _bucket, _sum or _count it is.
func familyOf(families map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	if f := families[name]; f != nil {
		return f
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f := families[base]; f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || suffix != "_bucket" && f.GetType() == dto.MetricType_SUMMARY) {
				return f
			}
		}
	}
	return nil
}

// hasLabel says whether a series of f has label name (with value, unless
// value is empty). A histogram's le counts as its label.
func hasLabel(f *dto.MetricFamily, name, value string) bool {
	if name == "le" && f.GetType() == dto.MetricType_HISTOGRAM {
		return true
	}
	return slices.ContainsFunc(f.GetMetric(), func(m *dto.Metric) bool {
		return slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == name && (value == "" || l.GetValue() == value)
		})
	})
}

// counterSum adds up a family's counters, or its histograms' counts.
func counterSum(f *dto.MetricFamily) float64 {
	total := 0.0
	for _, m := range f.GetMetric() {
		total += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return total
}

func TestPromQLSeriesFindsTheMetricsAnExpressionReads(t *testing.T) {
	for _, c := range []struct {
		expr string
		want string // name[labels] …
		bad  bool
	}{
		{expr: `up{job="fieldcrm"} == 0`, want: "up[job]"},
		{expr: `histogram_quantile(0.99, sum by (le, route) (rate(a_seconds_bucket{route=~"/v1/sync/.*",status!="200"}[5m]))) > 0.5`, want: "a_seconds_bucket[route status]"},
		{expr: `time() - max by (job) (b_timestamp_seconds) > 3 * max without (instance) (c_period_seconds)`, want: "b_timestamp_seconds[] c_period_seconds[]"},
		{expr: "sum(rate(x_total[15m])) > 10 * sum(rate(x_total[1d] offset 1d)) unless on (instance) y", want: "x_total[] x_total[] y[]"},
		{expr: `process_resident_memory_bytes / (go_gc_gomemlimit_bytes < 1e18) > 0.95`, want: "process_resident_memory_bytes[] go_gc_gomemlimit_bytes[]"},
		{expr: `min_over_time(max(z)[15m:1m]) > 0 and absent(w{a="}{"})`, want: "z[] w[a]"},
		{expr: `sum(rate(x_total[5m])`, bad: true},
		{expr: `x{a="b}`, bad: true},
	} {
		refs, err := promQLSeries(c.expr)
		if c.bad {
			if err == nil {
				t.Errorf("%s: no error", c.expr)
			}
			continue
		}
		var got []string
		for _, r := range refs {
			got = append(got, r.name+"["+strings.Join(r.labels, " ")+"]")
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("%s: %v %v, want %s", c.expr, got, err, c.want)
		}
	}
}
