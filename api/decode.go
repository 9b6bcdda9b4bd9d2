package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/models"
)

// decodeJSON reads the request body into dst strictly: JSON content type, one
// object, no unknown fields, right types. Every failure is a 4xx problem that
// names the offending field, and nothing has been written yet when it fails.
func decodeJSON(c *fiber.Ctx, dst any) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return malformed("the request body is empty; send a JSON object")
	}
	mediaType, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || (mediaType != fiber.MIMEApplicationJSON && !strings.HasSuffix(mediaType, "+json")) {
		return newProblem(fiber.StatusUnsupportedMediaType, typeUnsupported, "Unsupported media type",
			"send the body as JSON with Content-Type: application/json")
	}
	// encoding/json reads null into a struct as "no fields", which would let
	// a PATCH of null answer 200 having changed nothing the client meant.
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return malformed("the body is null; send a JSON object with the fields to set")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err, body)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return malformed("the body has data after the JSON object; send exactly one object")
	}
	return nil
}

func jsonProblem(err error, body []byte) error {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		timeErr *time.ParseError
	)
	switch {
	case errors.As(err, &timeErr):
		// encoding/json does not say which field held a bad time; find the
		// field whose value it was.
		return &models.ValidationError{Fields: []models.FieldError{{Field: fieldHolding(body, timeErr.Value),
			Message: "must be a time in RFC 3339 form, such as 2026-01-05T09:30:00+08:00"}}}
	case errors.As(err, &syntax):
		return malformed(fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return malformed("the JSON body ends too early")
	case errors.As(err, &typeErr):
		field := jsonFieldPath(typeErr.Field)
		if field == "" {
			return malformed("the body must be a JSON object")
		}
		return &models.ValidationError{Fields: []models.FieldError{{Field: field, Message: "must be " + jsonTypeName(typeErr.Type.String())}}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return &models.ValidationError{Fields: []models.FieldError{{Field: name, Message: "is not a field of this request"}}}
	default:
		return malformed("cannot read the JSON body: " + err.Error())
	}
}

// fieldHolding returns the dotted name of the first field of a JSON object
// (searched two levels deep) whose string value is value, or "body" if none is.
func fieldHolding(body []byte, value string) string {
	holds := func(raw json.RawMessage) bool {
		var s string
		return json.Unmarshal(raw, &s) == nil && s == value
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return "body"
	}
	for k, raw := range top {
		if holds(raw) {
			return k
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(raw, &inner) == nil {
			for ik, iraw := range inner {
				if holds(iraw) {
					return k + "." + ik
				}
			}
		}
	}
	return "body"
}

// jsonFieldPath drops the Go names of embedded structs that encoding/json puts
// in a field path ("Signup.company_name" → "company_name"); JSON names here are
// snake_case, so a capitalized segment is always a Go type name.
func jsonFieldPath(path string) string {
	var kept []string
	for _, seg := range strings.Split(path, ".") {
		if seg != "" && !unicode.IsUpper(rune(seg[0])) {
			kept = append(kept, seg)
		}
	}
	return strings.Join(kept, ".")
}

// jsonTypeName says what JSON a Go type expects, in the client's terms.
func jsonTypeName(goType string) string {
	switch {
	case strings.Contains(goType, "string"), strings.HasSuffix(goType, "Role"):
		return "a string"
	case strings.Contains(goType, "bool"):
		return "true or false"
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	default:
		return "an object"
	}
}

// pathID returns a path parameter copied out of Fiber's reused buffer, and
// refuses ids no record can have.
func pathID(c *fiber.Ctx, name string) (string, error) {
	id := strings.Clone(c.Params(name))
	if id == "" || len(id) > 64 {
		return "", models.ErrNotFound
	}
	return id, nil
}
