package api

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// param is one query parameter a route accepts. The route table declares
// them; the OpenAPI document describes them from that declaration, a
// request naming any other is refused (declaredQuery), and handlers read
// them through query, which refuses to read an undeclared one. So a
// parameter cannot be accepted without being documented.
type param struct {
	name string
	doc  string
	// typ is the JSON Schema type of the value: string (the default),
	// integer or boolean; list is one value or several separated by commas.
	typ  string
	list bool
	// format is a JSON Schema format of a string (date-time, date).
	format   string
	enum     []string
	min, max int // bounds of an integer, when max > 0
	required bool
	// nullText means the literal text null is accepted too, meaning none
	// (WatermelonDB sends last_pulled_at=null on a first sync).
	nullText bool
	// jsonSchema, when set, says the value is JSON of that schema (the
	// component of the Go value it decodes into).
	jsonSchema any
}

// Keys of c.Locals holding the route's declarations: its query parameters
// and whether it reads If-Match.
const (
	localQuery   = "fieldcrm.query"
	localIfMatch = "fieldcrm.if_match"
)

// declaredQuery serves next only when the request's query string is UTF-8
// text (no handler, filter or storage engine, whose regexp engine fails on
// other bytes, ever sees one) and names only declared parameters: a typo
// (?rol=rep) must not quietly answer the unfiltered list. Undeclared names
// are refused together with 422, each named.
func declaredQuery(r route, next fiber.Handler) fiber.Handler {
	names := make([]string, len(r.query))
	for i, p := range r.query {
		names[i] = p.name
	}
	slices.Sort(names)
	use := "this route takes no query parameters"
	if len(names) > 0 {
		use = "use " + strings.Join(names, ", ")
	}
	return func(c *fiber.Ctx) error {
		var bad string
		v := &models.ValidationError{}
		c.Context().QueryArgs().VisitAll(func(k, val []byte) {
			switch {
			case bad != "":
			case !utf8.Valid(k):
				bad = strings.ToValidUTF8(string(k), "\uFFFD")
			case !utf8.Valid(val):
				bad = string(k)
			default:
				if name := string(k); !slices.Contains(names, name) && !slices.ContainsFunc(v.Fields, func(f models.FieldError) bool { return f.Field == name }) {
					v.Add(name, "is not a parameter of this route; %s", use)
				}
			}
		})
		if bad != "" {
			return malformed(fmt.Sprintf("query parameter %q is not valid UTF-8 text; percent-encode the UTF-8 bytes of the text", bad))
		}
		if err := v.Err(); err != nil {
			slices.SortFunc(v.Fields, func(a, b models.FieldError) int { return strings.Compare(a.Field, b.Field) })
			return err
		}
		c.Locals(localQuery, names)
		c.Locals(localIfMatch, r.ifMatch)
		return next(c)
	}
}

// query returns the value of a query parameter the route declares, copied
// out of Fiber's reused buffers ("" when absent). Reading a parameter the
// route does not declare is a bug of the server, not of the request: it
// panics (a 500, and a failing test), so it never ships.
func query(c *fiber.Ctx, name string) string {
	declared, _ := c.Locals(localQuery).([]string)
	if _, found := slices.BinarySearch(declared, name); !found {
		panic(fmt.Sprintf("the handler of %s %s reads query parameter %q, which its route does not declare", c.Method(), c.Route().Path, name))
	}
	return strings.Clone(string(c.Context().QueryArgs().Peek(name)))
}

// queries returns every query parameter of the request (all declared, as
// declaredQuery let it through), copied.
func queries(c *fiber.Ctx) map[string]string {
	out := map[string]string{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		out[string(k)] = string(v)
	})
	return out
}

// queryInt reads an optional integer query parameter within [min, max].
func queryInt(c *fiber.Ctx, name string, def, min, max int) (int, error) {
	raw := query(c, name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < min || n > max {
		return 0, &models.ValidationError{Fields: []models.FieldError{{Field: name, Message: fmt.Sprintf("must be a whole number from %d to %d", min, max)}}}
	}
	return n, nil
}

// queryBool reads an optional true/false query parameter.
func queryBool(c *fiber.Ctx, name string) (*bool, error) {
	switch query(c, name) {
	case "":
		return nil, nil
	case "true":
		v := true
		return &v, nil
	case "false":
		v := false
		return &v, nil
	}
	return nil, &models.ValidationError{Fields: []models.FieldError{{Field: name, Message: "must be true or false"}}}
}

// Parameters shared by several routes.
var (
	limitParam = param{name: "limit", typ: "integer", min: 1, max: maxPageSize,
		doc: "page size (default " + strconv.Itoa(defaultPageSize) + ")"}
	afterParam = param{name: "after", doc: "the next_after of the previous page: the page after it"}
)

// listedCollection is what a list route needs to declare its parameters:
// the collection's filters and sort names (crm.Records).
type listedCollection interface {
	ListParams() []crm.ListParam
	SortNames() []string
}

// listParams declares the query parameters of a collection's list: limit,
// after, sort and each filter, leaving out those named in omit (a nested
// list's customer_id, which comes from its path).
func listParams(coll listedCollection, paging bool, omit ...string) []param {
	var out []param
	if paging {
		out = append(out, limitParam, afterParam)
	}
	var sorts []string
	for _, s := range coll.SortNames() {
		sorts = append(sorts, s, "-"+s)
	}
	out = append(out, param{name: "sort", enum: sorts, doc: "order of the list: a field, with - in front for descending (default: by id)"})
	for _, f := range coll.ListParams() {
		if slices.Contains(omit, f.Name) {
			continue
		}
		p := param{name: f.Name, doc: f.Doc, enum: f.Enum}
		switch f.Kind {
		case crm.ParamList:
			p.list = true
		case crm.ParamBool:
			p.typ = "boolean"
		case crm.ParamDate:
			p.format = "date"
		}
		out = append(out, p)
	}
	return out
}
