package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// openAPISchemaURL is where testdata/openapi-3.1-schema.json comes from: the
// official JSON Schema of OpenAPI 3.1 documents, as published at
// https://spec.openapis.org/oas/3.1/schema/2022-10-07 (the file
// schemas/v3.1/schema.json of github.com/OAI/OpenAPI-Specification).
const openAPISchemaURL = "https://spec.openapis.org/oas/3.1/schema/2022-10-07"

// openAPIDocument fetches the server's document, raw and decoded.
func openAPIDocument(t *testing.T, h *harness) ([]byte, map[string]any) {
	t.Helper()
	r := h.do("GET", "/v1/openapi.json", "", nil)
	h.expect(r, 200, "openapi")
	return r.body, r.json(t)
}

// The document is valid against the official schema of OpenAPI 3.1, every
// $ref in it points at something, and every schema in it compiles as JSON
// Schema 2020-12 (its $refs resolved).
func TestOpenAPIDocumentIsValidOpenAPI31(t *testing.T) {
	h := newHarness(t)
	raw, doc := openAPIDocument(t, h)

	schemaFile, err := os.Open(filepath.Join("testdata", "openapi-3.1-schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer schemaFile.Close()
	oas, err := jsonschema.UnmarshalJSON(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(openAPISchemaURL, oas); err != nil {
		t.Fatal(err)
	}
	validator, err := c.Compile(openAPISchemaURL)
	if err != nil {
		t.Fatal(err)
	}
	instance, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := validator.Validate(instance); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3.1: %v", err)
	}

	// Every $ref names a part of the document.
	var refs []string
	collectRefs(doc, &refs)
	if len(refs) < 50 {
		t.Fatalf("only %d $refs in the document", len(refs))
	}
	for _, ref := range refs {
		if _, ok := resolvePointer(doc, ref); !ok {
			t.Errorf("$ref %s points at nothing", ref)
		}
	}

	// Every schema is JSON Schema 2020-12, its references resolved.
	const docURL = "https://fieldcrm.test/openapi.json"
	sc := jsonschema.NewCompiler()
	docInstance, _ := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err := sc.AddResource(docURL, docInstance); err != nil {
		t.Fatal(err)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name := range schemas {
		if _, err := sc.Compile(docURL + "#/components/schemas/" + name); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
}

func collectRefs(v any, refs *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, inner := range v {
			if s, ok := inner.(string); ok && k == "$ref" {
				*refs = append(*refs, s)
			}
			collectRefs(inner, refs)
		}
	case []any:
		for _, inner := range v {
			collectRefs(inner, refs)
		}
	}
}

// resolvePointer follows a local reference (#/components/schemas/Customer).
func resolvePointer(doc any, ref string) (any, bool) {
	pointer, local := strings.CutPrefix(ref, "#/")
	if !local {
		return nil, false
	}
	at := doc
	for _, part := range strings.Split(pointer, "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := at.(map[string]any)
		if !ok {
			return nil, false
		}
		if at, ok = m[part]; !ok {
			return nil, false
		}
	}
	return at, true
}

// operation returns the document's operation of method and path.
func operation(t *testing.T, doc map[string]any, method, path string) map[string]any {
	t.Helper()
	item, ok := doc["paths"].(map[string]any)[path].(map[string]any)
	if !ok {
		t.Fatalf("no path %s", path)
	}
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		t.Fatalf("no %s %s", method, path)
	}
	return op
}

// parameters returns an operation's parameters by "in name" (query stage).
func parameters(op map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, p := range op["parameters"].([]any) {
		p := p.(map[string]any)
		if name, ok := p["name"].(string); ok {
			out[p["in"].(string)+" "+name] = p
		}
	}
	return out
}

func strings_(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// The parameters, headers, statuses and enumerations a generated client needs
// to sync and page are in the document.
func TestOpenAPIDocumentsParametersHeadersStatusesAndEnumerations(t *testing.T) {
	h := newHarness(t)
	_, doc := openAPIDocument(t, h)

	pull := operation(t, doc, "GET", "/v1/sync/pull")
	params := parameters(pull)
	for _, name := range []string{"query last_pulled_at", "query schema_version", "query migration"} {
		if params[name] == nil {
			t.Errorf("pull: no %s in %v", name, params)
		}
	}
	// WatermelonDB sends the text null for none: both say so.
	for _, name := range []string{"query last_pulled_at", "query migration"} {
		alts, _ := params[name]["schema"].(map[string]any)["anyOf"].([]any)
		if len(alts) != 2 || alts[1].(map[string]any)["const"] != "null" {
			t.Errorf("pull: %s does not take the text null: %v", name, params[name]["schema"])
		}
	}
	migration := params["query migration"]["schema"].(map[string]any)["anyOf"].([]any)[0].(map[string]any)
	if migration["contentSchema"] == nil {
		t.Errorf("migration's JSON has no schema: %v", migration)
	}
	pullOK := pull["responses"].(map[string]any)["200"].(map[string]any)
	if pullOK["headers"].(map[string]any)["X-Sync-Has-More"] == nil {
		t.Error("pull: no X-Sync-Has-More")
	}
	for _, code := range []string{"401", "410", "422", "503"} {
		if pull["responses"].(map[string]any)[code] == nil {
			t.Errorf("pull: no %s", code)
		}
	}
	push := parameters(operation(t, doc, "POST", "/v1/sync/push"))
	if push["query last_pulled_at"]["required"] != true {
		t.Errorf("push: last_pulled_at not required: %v", push)
	}

	list := parameters(operation(t, doc, "GET", "/v1/customers"))
	for _, name := range []string{"limit", "after", "sort", "q", "stage", "customer_type", "source", "region", "industry", "tag",
		"owner_id", "team_id", "value_tier", "credit_rating", "duplicate", "pool", "number", "updated_since"} {
		if list["query "+name] == nil {
			t.Errorf("customers list: no query parameter %s", name)
		}
	}
	stage := list["query stage"]
	if stage["explode"] != false || !slices.Contains(strings_(stage["schema"].(map[string]any)["items"].(map[string]any)["enum"]), "lead") {
		t.Errorf("stage: %v", stage)
	}
	if sorts := strings_(list["query sort"]["schema"].(map[string]any)["enum"]); !slices.Contains(sorts, "-name") {
		t.Errorf("sort: %v", sorts)
	}
	nested := parameters(operation(t, doc, "GET", "/v1/customers/{id}/interactions"))
	if nested["query channel"] == nil || nested["query customer_id"] != nil {
		t.Errorf("a customer's interactions: %v", nested)
	}
	for path, names := range map[string][]string{
		"/v1/tasks":                {"status", "assignee_id", "due_from", "due_to", "customer_id"},
		"/v1/conflicts":            {"table", "record_id", "resolved"},
		"/v1/notifications":        {"read", "kind", "task_id"},
		"/v1/exports/customers":    {"format", "lang", "stage", "sort"},
		"/v1/reports/sales":        {"from", "to", "team_id", "owner_id", "idle_days"},
		"/v1/users":                {"role", "active", "limit", "after"},
		"/v1/audit":                {"collection", "record_id", "before", "limit"},
		"/v1/interactions":         {"channel", "user_id", "from", "to", "q"},
		"/v1/reports/customers":    {"from", "to"},
		"/v1/customers/{id}/tasks": {"status"},
	} {
		got := parameters(operation(t, doc, "GET", path))
		for _, name := range names {
			if got["query "+name] == nil {
				t.Errorf("GET %s: no query parameter %s", path, name)
			}
		}
	}

	patch := operation(t, doc, "PATCH", "/v1/customers/{id}")
	if parameters(patch)["header If-Match"] == nil {
		t.Error("PATCH customer: no If-Match")
	}
	responses := patch["responses"].(map[string]any)
	for _, code := range []string{"200", "400", "401", "403", "404", "412", "413", "415", "422", "500"} {
		if responses[code] == nil {
			t.Errorf("PATCH customer: no %s", code)
		}
	}
	if responses["200"].(map[string]any)["headers"].(map[string]any)["ETag"] == nil {
		t.Error("PATCH customer: no ETag")
	}
	login := operation(t, doc, "POST", "/v1/auth/login")["responses"].(map[string]any)["429"].(map[string]any)
	problem, _ := resolvePointer(doc, login["$ref"].(string))
	if problem.(map[string]any)["headers"].(map[string]any)["Retry-After"] == nil {
		t.Errorf("login's 429 has no Retry-After: %v", problem)
	}

	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	customer := schemas["Customer"].(map[string]any)
	if !slices.Contains(strings_(customer["required"]), "name") {
		t.Errorf("Customer required: %v", customer["required"])
	}
	if enum := strings_(customer["properties"].(map[string]any)["stage"].(map[string]any)["enum"]); !slices.Contains(enum, "lead") {
		t.Errorf("Customer stage enum: %v", enum)
	}
	interaction := schemas["Interaction"].(map[string]any)
	if enum := strings_(interaction["properties"].(map[string]any)["channel"].(map[string]any)["enum"]); !slices.Contains(enum, "visit") {
		t.Errorf("Interaction channel enum: %v", enum)
	}
	// A PATCH sends only what changes: its schema requires nothing.
	body := patch["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	partial, _ := resolvePointer(doc, body["$ref"].(string))
	if partial.(map[string]any)["required"] != nil {
		t.Errorf("PATCH customer's body requires %v", partial.(map[string]any)["required"])
	}
}

// A query parameter a route does not declare is refused, named, before the
// handler runs; so the document lists every parameter the server accepts.
func TestUndeclaredQueryParametersAreRefused(t *testing.T) {
	h := newHarness(t)
	admin := h.signup("Acme", "ana@acme.example")
	for _, path := range []string{"/v1/teams?rol=rep", "/v1/customers?stagee=lead", "/v1/reports/funnel?limit=3",
		"/v1/sync/pull?last_pulled_at=null&since=3", "/v1/me?x=1"} {
		r := h.do("GET", path, admin.access, nil)
		h.expect(r, 422, path)
		if !strings.Contains(string(r.body), "is not a parameter of this route") {
			t.Errorf("%s: %s", path, r.body)
		}
	}
	h.expect(h.do("GET", "/v1/customers?stage=lead,customer&sort=-name&limit=5", admin.access, nil), 200, "declared parameters")
}

// Handlers read query parameters only through query (query.go), which
// refuses a name the route does not declare: no handler can accept a
// parameter the document does not list.
func TestHandlersReadQueryParametersOnlyThroughTheirDeclaration(t *testing.T) {
	direct := regexp.MustCompile(`\.(Query|Queries|QueryArgs|QueryParser|QueryBool|QueryInt|QueryFloat)\(`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "query.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for i, line := range strings.Split(string(src), "\n") {
			if direct.MatchString(line) {
				t.Errorf("%s:%d reads the query string directly; read it with query(c, name): %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d files", checked)
	}
}

// decodeOpenAPI is the part of the document the status check reads.
type statusBook struct {
	routes []documentedRoute
}

type documentedRoute struct {
	method   string
	segments []string // "" for a path parameter
	statuses []string
	// headers are the response headers documented for each status.
	headers map[string][]string
}

// checkedHeaders are the response headers of particular routes: an answer
// carrying one must be documented to (the others every answer may have).
var checkedHeaders = []string{"ETag", "Location", "X-Sync-Has-More", "X-Sync-Records", "X-Sync-Until", "X-Export-ID", "Retry-After", "WWW-Authenticate"}

func newStatusBook(raw []byte) (*statusBook, error) {
	type responseDoc struct {
		Ref     string         `json:"$ref"`
		Headers map[string]any `json:"headers"`
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]responseDoc `json:"responses"`
		} `json:"paths"`
		Components struct {
			Responses map[string]responseDoc `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	b := &statusBook{}
	for path, ops := range doc.Paths {
		var segments []string
		for _, s := range strings.Split(strings.Trim(path, "/"), "/") {
			if strings.HasPrefix(s, "{") {
				s = ""
			}
			segments = append(segments, s)
		}
		for method, op := range ops {
			r := documentedRoute{method: strings.ToUpper(method), segments: segments, headers: map[string][]string{}}
			for code, res := range op.Responses {
				r.statuses = append(r.statuses, code)
				if res.Ref != "" {
					res = doc.Components.Responses[strings.TrimPrefix(res.Ref, "#/components/responses/")]
				}
				for name := range res.Headers {
					r.headers[code] = append(r.headers[code], http.CanonicalHeaderKey(name))
				}
			}
			b.routes = append(b.routes, r)
		}
	}
	return b, nil
}

// statuses returns the documented statuses of the route serving method and
// path, the one with most literal segments when several match, as Fiber
// routes; false when none does (the router's own 404 and 405).
func (b *statusBook) statuses(method, path string) ([]string, bool) {
	r, ok := b.route(method, path)
	return r.statuses, ok
}

// undocumentedHeaders returns the checkedHeaders an answer of method and
// path with status carries that the document does not list for it.
func (b *statusBook) undocumentedHeaders(method, path string, status int, header http.Header) []string {
	r, ok := b.route(method, path)
	if !ok {
		return nil
	}
	var out []string
	for _, name := range checkedHeaders {
		if header.Get(name) != "" && !slices.Contains(r.headers[strconv.Itoa(status)], http.CanonicalHeaderKey(name)) {
			out = append(out, name)
		}
	}
	return out
}

func (b *statusBook) route(method, path string) (documentedRoute, bool) {
	path, _, _ = strings.Cut(path, "?")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	best, bestLiterals := -1, -1
	for i, r := range b.routes {
		if r.method != method || len(r.segments) != len(parts) {
			continue
		}
		literals, match := 0, true
		for j, s := range r.segments {
			if s == "" {
				if parts[j] == "" {
					match = false
				}
				continue
			}
			if s != parts[j] {
				match = false
				break
			}
			literals++
		}
		if match && literals > bestLiterals {
			best, bestLiterals = i, literals
		}
	}
	if best < 0 {
		return documentedRoute{}, false
	}
	return b.routes[best], true
}

// The check of every answer the tests get (harness.do) finds the route Fiber
// serves, its documented statuses and their headers.
func TestEveryAnswerIsCheckedAgainstItsRoutesDocumentedStatuses(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		method, path string
		has, hasNot  string
	}{
		{"PATCH", "/v1/customers/abc", "412", "409"},
		{"GET", "/v1/customers/abc", "404", "412"},
		{"GET", "/v1/customers/abc/timeline", "404", "412"},
		{"GET", "/v1/customers?stage=lead", "422", "404"},
		{"POST", "/v1/auth/login", "429", "404"},
		{"GET", "/v1/sync/pull?last_pulled_at=3", "410", "404"},
	} {
		statuses, routed := h.documented.statuses(c.method, c.path)
		if !routed || !slices.Contains(statuses, c.has) || slices.Contains(statuses, c.hasNot) {
			t.Errorf("%s %s: %v (routed %v), want %s and not %s", c.method, c.path, statuses, routed, c.has, c.hasNot)
		}
	}
	etag := http.Header{"Etag": {`"3"`}}
	if missing := h.documented.undocumentedHeaders("GET", "/v1/customers", 200, etag); !slices.Equal(missing, []string{"ETag"}) {
		t.Errorf("an ETag on a list: %v", missing)
	}
	if missing := h.documented.undocumentedHeaders("GET", "/v1/customers/abc", 200, etag); missing != nil {
		t.Errorf("an ETag on a customer: %v", missing)
	}
	if _, routed := h.documented.statuses("GET", "/v1/nowhere"); routed {
		t.Error("an unknown path matched a route")
	}
	if _, routed := h.documented.statuses("PUT", "/v1/customers/abc"); routed {
		t.Error("an unknown method matched a route")
	}
}

// Real answers of the server are valid against the schemas the document
// gives them: every field it requires is there, every value in its
// enumeration, every type right.
func TestAnswersMatchTheirDocumentedSchemas(t *testing.T) {
	h := newHarness(t)
	raw, doc := openAPIDocument(t, h)
	const docURL = "https://fieldcrm.test/openapi.json"
	c := jsonschema.NewCompiler()
	instance, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(docURL, instance); err != nil {
		t.Fatal(err)
	}
	// check validates an answer against the schema of its status in the
	// operation documented for method and pattern.
	check := func(method, pattern string, r response) {
		t.Helper()
		res, ok := operation(t, doc, method, pattern)["responses"].(map[string]any)[strconv.Itoa(r.status)].(map[string]any)
		if !ok {
			t.Errorf("%s %s: status %d not documented", method, pattern, r.status)
			return
		}
		if ref, isRef := res["$ref"].(string); isRef {
			resolved, _ := resolvePointer(doc, ref)
			res = resolved.(map[string]any)
		}
		var schemaRef string
		for media, content := range res["content"].(map[string]any) {
			if strings.HasSuffix(media, "json") {
				schemaRef, _ = content.(map[string]any)["schema"].(map[string]any)["$ref"].(string)
			}
		}
		if schemaRef == "" {
			t.Errorf("%s %s %d: no JSON schema to check against", method, pattern, r.status)
			return
		}
		schema, err := c.Compile(docURL + schemaRef)
		if err != nil {
			t.Fatalf("%s: %v", schemaRef, err)
		}
		body, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
		if err != nil {
			t.Fatalf("%s %s: %v", method, pattern, err)
		}
		if err := schema.Validate(body); err != nil {
			t.Errorf("%s %s (%d) does not match %s: %v\n%s", method, pattern, r.status, schemaRef, err, r.body)
		}
	}

	signup := h.do("POST", "/v1/auth/signup", "", map[string]any{"company_name": "Schema Co", "name": "Ana", "email": "ana@schema.example", "password": testPassword})
	check("POST", "/v1/auth/signup", signup)
	admin := signup.json(t)["access_token"].(string)
	check("POST", "/v1/auth/login", h.do("POST", "/v1/auth/login", "", map[string]any{"email": "ana@schema.example", "password": testPassword, "device_id": "phone-1"}))
	check("GET", "/v1/me", h.do("GET", "/v1/me", admin, nil))
	created := h.do("POST", "/v1/customers", admin, map[string]any{"name": "Checked Trading", "stage": "lead"})
	check("POST", "/v1/customers", created)
	h.expect(created, 201, "create a customer")
	id := created.json(t)["id"].(string)
	check("GET", "/v1/customers/{id}", h.do("GET", "/v1/customers/"+id, admin, nil))
	check("PATCH", "/v1/customers/{id}", h.do("PATCH", "/v1/customers/"+id, admin, map[string]any{"industry": "retail"}))
	check("GET", "/v1/customers", h.do("GET", "/v1/customers?stage=lead", admin, nil))
	check("POST", "/v1/interactions", h.do("POST", "/v1/interactions", admin, map[string]any{"customer_id": id, "channel": "visit", "content": "first visit"}))
	check("GET", "/v1/customers/{id}/interactions", h.do("GET", "/v1/customers/"+id+"/interactions", admin, nil))
	check("POST", "/v1/tasks", h.do("POST", "/v1/tasks", admin, map[string]any{"customer_id": id, "title": "call back", "due_at": "2099-01-05T09:00:00Z"}))
	check("GET", "/v1/customers/{id}/timeline", h.do("GET", "/v1/customers/"+id+"/timeline", admin, nil))
	check("GET", "/v1/sync/pull", h.do("GET", "/v1/sync/pull?last_pulled_at=null", admin, nil))
	check("GET", "/v1/sync/schema", h.do("GET", "/v1/sync/schema", admin, nil))
	check("GET", "/v1/sync/models", h.do("GET", "/v1/sync/models?version=2", admin, nil))
	check("GET", "/v1/users", h.do("GET", "/v1/users", admin, nil))
	check("GET", "/v1/settings", h.do("GET", "/v1/settings", admin, nil))
	check("GET", "/v1/reports/customers", h.do("GET", "/v1/reports/customers", admin, nil))
	check("GET", "/v1/audit", h.do("GET", "/v1/audit", admin, nil))
	// Problems too.
	check("POST", "/v1/interactions", h.do("POST", "/v1/interactions", admin, map[string]any{"customer_id": id, "channel": "pigeon"}))
	check("GET", "/v1/customers/{id}", h.do("GET", "/v1/customers/nope", admin, nil))
}
