package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// CORS lets a browser app served from another origin (a web console on
// https://console.example.com calling https://api.example.com) use the API.
// The policy is a list of exact origins (Config.CORSOrigins,
// FIELDCRM_CORS_ORIGINS); with none, the API sends no CORS header at all and
// browsers allow same-origin calls only.
//
// Allowed origins are echoed back, never "*": the API's requests carry an
// Authorization header, and an operator who lists origins means those and no
// others. No Access-Control-Allow-Credentials is sent: the API uses bearer
// tokens, not cookies, so a browser never needs to send credentials it holds.

// corsRequestHeaders are the request headers the API reads that a browser
// app sets itself (so they need the preflight's permission): the bearer
// token, the body's type, the optimistic-concurrency version and a request
// id to correlate with the server's logs.
var corsRequestHeaders = []string{fiber.HeaderAuthorization, fiber.HeaderContentType, fiber.HeaderIfMatch, fiber.HeaderXRequestID}

// corsExposedHeaders are the response headers the API sets that a client
// reads, beyond the ones every browser exposes (Content-Type and the like):
// a record's version, a created resource, how long to wait, the request id,
// whether a pull has more pages, an export's id and file name, and how to
// authenticate.
var corsExposedHeaders = []string{fiber.HeaderETag, fiber.HeaderLocation, fiber.HeaderRetryAfter, fiber.HeaderXRequestID,
	"X-Sync-Has-More", "X-Sync-Records", "X-Sync-Until", "X-Export-ID", fiber.HeaderContentDisposition, fiber.HeaderWWWAuthenticate}

// corsMaxAge is how long a browser may reuse a preflight's answer, in
// seconds. Chromium caps it at 2 hours; 10 minutes keeps a changed policy
// from lingering long in open tabs.
const corsMaxAge = 600

// corsPolicy answers preflights and marks responses for the allowed origins.
type corsPolicy struct {
	origins map[string]bool
	methods string
	headers string
	exposed string
}

// newCORSPolicy checks the origins (each scheme://host[:port], nothing else)
// and returns the policy for the methods the API serves. No origins gives a
// policy that allows none.
func newCORSPolicy(origins []string, methods []string) (*corsPolicy, error) {
	p := &corsPolicy{origins: map[string]bool{}}
	for _, o := range origins {
		if err := CheckOrigin(o); err != nil {
			return nil, err
		}
		p.origins[o] = true
	}
	methods = slices.Clone(methods)
	slices.Sort(methods)
	p.methods = strings.Join(slices.Compact(methods), ", ")
	p.headers = strings.Join(corsRequestHeaders, ", ")
	p.exposed = strings.Join(corsExposedHeaders, ", ")
	return p, nil
}

// CheckOrigin accepts an origin as a browser sends it in the Origin header:
// http or https, a host, an optional port; no path, query, user or
// wildcard, and lower case (browsers send it so, and matching is exact).
func CheckOrigin(origin string) error {
	u, err := url.Parse(origin)
	bad := func(why string) error {
		return fmt.Errorf("CORS origin %q: %s; write it as the browser sends it, such as https://console.example.com or http://localhost:3000", origin, why)
	}
	switch {
	case err != nil:
		return bad(err.Error())
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("want an http or https origin")
	case u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(origin, "?") || strings.HasSuffix(origin, "#"):
		return bad("an origin is scheme://host[:port] only, with no path (not even a trailing /)")
	case strings.Contains(u.Host, "*"):
		return bad("wildcards are not accepted: list each origin")
	case origin != strings.ToLower(origin):
		return bad("browsers send origins in lower case")
	}
	return nil
}

// enabled says whether any origin is allowed.
func (p *corsPolicy) enabled() bool { return len(p.origins) > 0 }

// handle is the middleware. It comes before the router, whose 405 would
// otherwise answer a preflight (OPTIONS is no route's method).
func (p *corsPolicy) handle(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	preflight := c.Method() == fiber.MethodOptions && origin != "" && c.Get(fiber.HeaderAccessControlRequestMethod) != ""
	if p.enabled() {
		// The answer depends on Origin, allowed or not: a cache must not
		// give one origin's response to another.
		c.Vary(fiber.HeaderOrigin)
	}
	allowed := origin != "" && p.origins[origin]
	if preflight {
		if !allowed {
			return newProblem(fiber.StatusForbidden, typeForbidden, "Origin not allowed",
				fmt.Sprintf("browser apps served from %s may not call this API: the server's FIELDCRM_CORS_ORIGINS does not list that origin", origin))
		}
		h := &c.Response().Header
		h.Set(fiber.HeaderAccessControlAllowOrigin, origin)
		h.Set(fiber.HeaderAccessControlAllowMethods, p.methods)
		h.Set(fiber.HeaderAccessControlAllowHeaders, p.headers)
		h.Set(fiber.HeaderAccessControlMaxAge, strconv.Itoa(corsMaxAge))
		c.Status(fiber.StatusNoContent)
		return nil
	}
	if allowed {
		c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
		c.Set(fiber.HeaderAccessControlExposeHeaders, p.exposed)
	}
	return c.Next()
}
