package api

import (
	"cmp"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/models"
)

// fiberParam matches a Fiber path parameter such as :id.
var fiberParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// OpenAPIPath converts a Fiber path (/v1/users/:id) to OpenAPI's (/v1/users/{id}).
func OpenAPIPath(fiberPath string) string {
	return fiberParam.ReplaceAllString(fiberPath, "{$1}")
}

type object = map[string]any

// openAPIDocument describes every route of the route table in OpenAPI 3.1:
// its path and query parameters, request and response headers, body schemas
// and every status it can answer (statuses). Schemas come from the Go types
// the handlers decode and encode, enumerations and required fields from
// models.FieldRules, query parameters from the route's declaration, which is
// also what the server accepts: the document cannot drift from the server.
func (s *Server) openAPIDocument() object {
	schemas := object{"Problem": schemaOf(reflect.TypeFor[Problem](), nil, output)}
	paths := object{}
	for _, r := range s.routes {
		p := OpenAPIPath(r.path)
		item, _ := paths[p].(object)
		if item == nil {
			item = object{}
			paths[p] = item
		}
		op := object{"summary": r.summary, "tags": []string{r.tag}, "operationId": operationID(r)}
		params := []any{object{"$ref": "#/components/parameters/RequestID"}}
		for _, m := range fiberParam.FindAllStringSubmatch(r.path, -1) {
			params = append(params, object{"name": m[1], "in": "path", "required": true, "schema": object{"type": "string"}})
		}
		for _, q := range r.query {
			params = append(params, queryParameter(q, schemas))
		}
		if r.ifMatch {
			params = append(params, object{"name": "If-Match", "in": "header", "schema": object{"type": "string"},
				"description": `the record's version as its ETag gave it ("3"): the write is refused with 412 if the record changed since; absent or *: last writer wins`})
		}
		op["parameters"] = params
		if r.request != nil {
			op["requestBody"] = requestBody(r, schemas)
		}
		ok := object{"description": httpStatusText(r.status), "headers": successHeaders(r)}
		if r.response != nil {
			ok["content"] = object{"application/json": object{"schema": schemaOf(reflect.TypeOf(r.response), schemas, output)}}
		}
		for _, media := range r.media {
			content, _ := ok["content"].(object)
			if content == nil {
				content = object{}
				ok["content"] = content
			}
			content[media] = object{"schema": object{"type": "string", "contentMediaType": media}}
		}
		responses := object{strconv.Itoa(r.status): ok}
		if r.auth {
			op["security"] = []object{{"bearer": []string{}}}
		}
		for _, code := range r.statuses() {
			if code == r.status {
				continue
			}
			if code == fiber.StatusServiceUnavailable && r.unhealthy {
				responses["503"] = object{"description": "Not ready or not alive: the same document, saying which check failed",
					"headers": object{"X-Request-ID": object{"$ref": "#/components/headers/RequestID"}},
					"content": object{"application/json": object{"schema": schemaOf(reflect.TypeOf(r.response), schemas, output)}}}
				continue
			}
			responses[strconv.Itoa(code)] = object{"$ref": "#/components/responses/" + problemResponseName(code)}
		}
		op["responses"] = responses
		item[strings.ToLower(r.method)] = op
	}
	return object{
		"openapi": "3.1.0",
		"info": object{
			"title":   "fieldcrm API",
			"version": s.cfg.Version,
			"description": "REST API of fieldcrm, the self-hosted backend for field sales teams. Errors are RFC 9457 problem documents " +
				"(application/problem+json). Answers over 200 bytes are gzip-compressed when the request's Accept-Encoding allows it. " +
				"List filters marked as arrays take one value or several separated by commas (style form, explode false).",
		},
		"paths": paths,
		"components": object{
			"schemas":   schemas,
			"responses": problemResponses(),
			"parameters": object{"RequestID": object{"name": "X-Request-ID", "in": "header", "schema": object{"type": "string", "maxLength": maxRequestIDLength},
				"description": "an id of this request for the logs (printable ASCII); the server makes one when absent or unusable, and echoes it"}},
			"headers": object{
				"RequestID":       object{"description": "the request's id, as sent or made by the server (also request_id in a problem document)", "schema": object{"type": "string"}},
				"ContentEncoding": object{"description": "gzip when the request's Accept-Encoding allows it and the body is over 200 bytes", "schema": object{"type": "string", "enum": []string{"gzip"}}},
				"RetryAfter":      object{"description": "seconds to wait before sending the request again", "schema": object{"type": "integer", "minimum": 0}},
			},
			"securitySchemes": object{"bearer": object{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
		},
	}
}

// statuses lists every status the route can answer, sorted: its success,
// those every route of its kind gives, and its own errors.
func (r route) statuses() []int {
	codes := append([]int{r.status,
		fiber.StatusBadRequest,          // a query string that is not UTF-8, a malformed header or body
		fiber.StatusUnprocessableEntity, // an undeclared or invalid query parameter (declaredQuery)
		fiber.StatusInternalServerError,
	}, r.errors...)
	if r.auth {
		codes = append(codes, fiber.StatusUnauthorized) // no, an expired or a revoked token (authenticate)
	}
	if strings.Contains(r.path, ":") {
		codes = append(codes, fiber.StatusNotFound) // no such record, or one the caller may not see
	}
	if r.request != nil {
		codes = append(codes, fiber.StatusRequestEntityTooLarge) // the body limit
		if !r.multipart {
			codes = append(codes, fiber.StatusUnsupportedMediaType) // not JSON (decodeJSON)
		}
	}
	slices.Sort(codes)
	return slices.Compact(codes)
}

// successHeaders are the headers of the route's success response.
func successHeaders(r route) object {
	h := object{"X-Request-ID": object{"$ref": "#/components/headers/RequestID"}}
	if r.response != nil || len(r.media) > 0 {
		h["Content-Encoding"] = object{"$ref": "#/components/headers/ContentEncoding"}
	}
	// setETag sends the version of what is a models.Record.
	if r.response != nil && reflect.PointerTo(reflect.TypeOf(r.response)).Implements(reflect.TypeFor[models.Record]()) {
		h["ETag"] = object{"description": `the record's version ("3"), to send back as If-Match`, "schema": object{"type": "string"}}
	}
	for _, x := range r.headers {
		h[x.name] = object{"description": x.doc, "schema": object{"type": "string"}}
	}
	return h
}

// requestBody describes the route's body: JSON of its request type, or a
// multipart form. A PATCH sends only the fields it changes, so its schema
// has no required fields.
func requestBody(r route, schemas object) object {
	t := reflect.TypeOf(r.request)
	if r.multipart {
		return object{"required": true, "content": object{"multipart/form-data": object{"schema": schemaOf(t, schemas, input)}}}
	}
	schema := schemaOf(t, schemas, input)
	if ref, isRef := schema["$ref"].(string); isRef && r.method == fiber.MethodPatch {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		if full, _ := schemas[name].(object); full["required"] != nil {
			partial := maps.Clone(full)
			delete(partial, "required")
			schemas[name+"Patch"] = partial
			schema = object{"$ref": "#/components/schemas/" + name + "Patch"}
		}
	}
	return object{"required": true, "content": object{"application/json": object{"schema": schema}}}
}

// queryParameter describes a declared query parameter.
func queryParameter(p param, schemas object) object {
	schema := object{"type": cmp.Or(p.typ, "string")}
	if p.format != "" {
		schema["format"] = p.format
	}
	if p.max > 0 {
		schema["minimum"], schema["maximum"] = p.min, p.max
	}
	if p.jsonSchema != nil {
		schema["contentMediaType"] = "application/json"
		schema["contentSchema"] = schemaOf(reflect.TypeOf(p.jsonSchema), schemas, input)
	}
	if p.enum != nil {
		schema["enum"] = p.enum
	}
	if p.nullText {
		schema = object{"anyOf": []object{schema, {"type": "string", "const": "null"}}}
	}
	out := object{"name": p.name, "in": "query", "description": p.doc, "schema": schema}
	if p.list {
		out["schema"] = object{"type": "array", "items": schema}
		out["style"], out["explode"] = "form", false
	}
	if p.required {
		out["required"] = true
	}
	return out
}

// problemResponseName names the shared response of an error status.
func problemResponseName(code int) string { return "Problem" + strconv.Itoa(code) }

// problemResponses are the error responses, one per status, each a problem
// document; 429 and 503 say when to try again, 401 how to authenticate.
func problemResponses() object {
	out := object{}
	for _, code := range []int{400, 401, 403, 404, 409, 410, 412, 413, 415, 422, 429, 500, 503} {
		headers := object{"X-Request-ID": object{"$ref": "#/components/headers/RequestID"}}
		switch code {
		case fiber.StatusTooManyRequests, fiber.StatusServiceUnavailable:
			headers["Retry-After"] = object{"$ref": "#/components/headers/RetryAfter"}
		case fiber.StatusUnauthorized:
			headers["WWW-Authenticate"] = object{"description": `Bearer realm="fieldcrm"`, "schema": object{"type": "string"}}
		}
		out[problemResponseName(code)] = object{"description": httpStatusText(code), "headers": headers, "content": object{
			"application/problem+json": object{"schema": object{"$ref": "#/components/schemas/Problem"}}}}
	}
	return out
}

func operationID(r route) string {
	id := strings.ToLower(r.method)
	for _, part := range strings.Split(strings.Trim(r.path, "/"), "/") {
		part = strings.TrimPrefix(part, ":")
		part = strings.ReplaceAll(part, ".", "_")
		if part == "" {
			continue
		}
		id += strings.ToUpper(part[:1]) + part[1:]
	}
	return id
}

func httpStatusText(code int) string {
	texts := map[int]string{200: "OK", 201: "Created", 204: "No Content", 400: "Malformed request", 401: "Unauthenticated",
		403: "Forbidden", 404: "Not found", 409: "Conflict", 410: "Full resync required", 412: "Stale version (If-Match)", 413: "Body too large", 415: "Unsupported media type",
		422: "Invalid input", 429: "Too many attempts", 500: "Internal error", 503: "A dependency is unavailable"}
	if t, ok := texts[code]; ok {
		return t
	}
	return strconv.Itoa(code)
}

// direction says whether a schema describes what the server sends (output)
// or what it reads (input). They differ in what is required: an answer
// always has every field encoding/json does not omit, a request needs only
// the fields models.FieldRules requires.
type direction bool

const (
	output direction = false
	input  direction = true
)

// schemaOf returns the JSON Schema of a Go type as encoding/json renders it.
// Named struct types go into components (when given) and are referenced:
// as their name for output, with Input after it for input.
func schemaOf(t reflect.Type, components object, dir direction) object {
	switch t {
	case reflect.TypeFor[time.Time]():
		return object{"type": "string", "format": "date-time"}
	case reflect.TypeFor[models.Role]():
		return object{"type": "string", "enum": models.RoleNames}
	case reflect.TypeFor[uploadedFile]():
		return object{"type": "string", "contentMediaType": "application/octet-stream"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		inner := schemaOf(t.Elem(), components, dir)
		switch typ := inner["type"].(type) {
		case string:
			inner["type"] = []string{typ, "null"}
			return inner
		case []string:
			if slices.Contains(typ, "null") {
				return inner
			}
		}
		return object{"oneOf": []any{inner, object{"type": "null"}}}
	case reflect.String:
		return object{"type": "string"}
	case reflect.Bool:
		return object{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return object{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return object{"type": "number"}
	// encoding/json writes a nil slice or map as null: an answer may hold
	// one wherever the server did not make it empty.
	case reflect.Slice:
		return object{"type": nullableIn(dir, "array"), "items": schemaOf(t.Elem(), components, dir)}
	case reflect.Array:
		return object{"type": "array", "items": schemaOf(t.Elem(), components, dir)}
	case reflect.Map:
		return object{"type": nullableIn(dir, "object"), "additionalProperties": schemaOf(t.Elem(), components, dir)}
	case reflect.Struct:
		name := schemaName(t)
		if name != "" && dir == input {
			name += "Input"
		}
		if components != nil && name != "" {
			if _, done := components[name]; !done {
				components[name] = object{} // placeholder against recursion
				components[name] = structSchema(t, components, dir)
			}
			return object{"$ref": "#/components/schemas/" + name}
		}
		return structSchema(t, components, dir)
	default:
		return object{}
	}
}

// nullableIn is the JSON Schema type of a slice or map: null too in an answer.
func nullableIn(dir direction, typ string) any {
	if dir == output {
		return []string{typ, "null"}
	}
	return typ
}

// schemaName names a component after its Go type; generic page types get the
// element's name (PageUser); unexported request types get their exported form.
func schemaName(t reflect.Type) string {
	name := t.Name()
	if i := strings.Index(name, "["); i >= 0 {
		elem := name[i+1 : len(name)-1]
		elem = elem[strings.LastIndex(elem, ".")+1:]
		name = name[:i] + elem
	}
	if name == "" {
		return ""
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

// fieldRuler is an API type (a request of its own) that names its fields'
// enumerations and required fields, as models.FieldRules does for models.
type fieldRuler interface {
	fieldRules() map[string]models.FieldRule
}

func structSchema(t reflect.Type, components object, dir direction) object {
	props := object{}
	rules := map[string]models.FieldRule{}
	var always []string
	collectFields(t, props, rules, &always, components, dir)
	// Fields of CRM records that only the server writes are marked readOnly, so
	// generated clients leave them out of requests (the server refuses them).
	if rec, ok := reflect.New(t).Interface().(models.Record); ok {
		for _, name := range models.ServerFields(rec) {
			if p, ok := props[name].(object); ok {
				p = refWrapped(p)
				p["readOnly"] = true
				props[name] = p
			}
		}
	}
	out := object{"type": "object", "properties": props}
	// An answer has every field encoding/json always writes; a request
	// needs those the rules require.
	var required []string
	if dir == output {
		required = always
	}
	for name, rule := range rules {
		parent, child, nested := strings.Cut(name, ".")
		p, ok := props[parent].(object)
		if !ok {
			continue // a rule of a field this type does not render
		}
		if nested {
			// A nested object's own rule, on this use of it only.
			p = refWrapped(p)
			inner, _ := p["properties"].(object)
			if inner == nil {
				inner = object{}
				p["properties"] = inner
			}
			if rule.Enum != nil {
				inner[child] = object{"enum": enumOf(rule.Enum, false)}
			}
			if rule.Required {
				req, _ := p["required"].([]string)
				p["required"] = append(req, child)
			}
			props[parent] = p
			continue
		}
		if rule.Enum != nil {
			if items, isArray := p["items"].(object); isArray {
				items["enum"] = enumOf(rule.Enum, false)
			} else {
				p = refWrapped(p)
				p["enum"] = enumOf(rule.Enum, isNullable(p))
				props[parent] = p
			}
		}
		if rule.Required && dir == input {
			required = append(required, name)
		}
	}
	if len(required) > 0 {
		slices.Sort(required)
		out["required"] = slices.Compact(required)
	}
	return out
}

// refWrapped returns a property schema that may take keywords beside a
// $ref of another component: the reference moved into allOf.
func refWrapped(p object) object {
	if ref, isRef := p["$ref"]; isRef {
		return object{"allOf": []any{object{"$ref": ref}}}
	}
	return p
}

// isNullable says whether a schema allows null (a pointer field).
func isNullable(p object) bool {
	types, _ := p["type"].([]string)
	return slices.Contains(types, "null") || p["oneOf"] != nil
}

// enumOf is an enum keyword's values, with null when the field may be null.
func enumOf(values []string, nullable bool) []any {
	out := make([]any, 0, len(values)+1)
	for _, v := range values {
		out = append(out, v)
	}
	if nullable {
		out = append(out, nil)
	}
	return out
}

// collectFields adds t's JSON fields to props, flattening embedded structs as
// encoding/json does, their rules (models.FieldRules, fieldRuler) to rules,
// and the names of those encoding/json always writes (no omitempty) to always.
func collectFields(t reflect.Type, props object, rules map[string]models.FieldRule, always *[]string, components object, dir direction) {
	maps.Copy(rules, models.FieldRules(t))
	if ruler, ok := reflect.New(t).Elem().Interface().(fieldRuler); ok {
		maps.Copy(rules, ruler.fieldRules())
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			collectFields(f.Type, props, rules, always, components, dir)
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type, components, dir)
		if !slices.Contains(strings.Split(opts, ","), "omitempty") && !slices.Contains(strings.Split(opts, ","), "omitzero") {
			*always = append(*always, name)
		}
	}
}
