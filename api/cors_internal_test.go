package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// corsApp is a Fiber app with the CORS middleware in front of two routes, as
// New puts it, and the server's problem rendering.
func corsApp(t *testing.T, origins ...string) *fiber.App {
	t.Helper()
	policy, err := newCORSPolicy(origins, []string{"GET", "PATCH", "POST", "GET", "DELETE"})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{log: slog.New(slog.DiscardHandler)}
	app := fiber.New(fiber.Config{ErrorHandler: s.errorHandler, DisableStartupMessage: true})
	app.Use(policy.handle)
	app.Get("/v1/things/:id", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderETag, `"3"`)
		return c.JSON(fiber.Map{"id": c.Params("id")})
	})
	app.Patch("/v1/things/:id", func(c *fiber.Ctx) error {
		return newProblem(fiber.StatusPreconditionFailed, typeStale, "Stale version", "send the current ETag in If-Match")
	})
	return app
}

func corsRequest(t *testing.T, app *fiber.App, method, origin string, preflightMethod string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, "/v1/things/a1", nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if preflightMethod != "" {
		req.Header.Set("Access-Control-Request-Method", preflightMethod)
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,if-match")
	}
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestCORSPreflightFromAnAllowedOriginIsAnswered(t *testing.T) {
	app := corsApp(t, "https://console.example.com", "http://localhost:3000")
	res := corsRequest(t, app, "OPTIONS", "http://localhost:3000", "PATCH")
	if res.StatusCode != fiber.StatusNoContent {
		t.Fatalf("preflight status %d, want 204", res.StatusCode)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":  "http://localhost:3000",
		"Access-Control-Allow-Methods": "DELETE, GET, PATCH, POST",
		"Access-Control-Max-Age":       "600",
		"Vary":                         "Origin",
	}
	for name, value := range want {
		if got := res.Header.Get(name); got != value {
			t.Errorf("%s: %q, want %q", name, got, value)
		}
	}
	allowed := strings.Split(res.Header.Get("Access-Control-Allow-Headers"), ", ")
	for _, h := range []string{"Authorization", "Content-Type", "If-Match", "X-Request-ID"} {
		if !slices.Contains(allowed, h) {
			t.Errorf("Access-Control-Allow-Headers %v lacks %s", allowed, h)
		}
	}
	if res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("credentials allowed: the API uses bearer tokens, not cookies")
	}
}

func TestCORSPreflightFromAnotherOriginIsRefusedWithAProblem(t *testing.T) {
	for name, app := range map[string]*fiber.App{
		"origin not listed":  corsApp(t, "https://console.example.com"),
		"no origins allowed": corsApp(t),
	} {
		t.Run(name, func(t *testing.T) {
			res := corsRequest(t, app, "OPTIONS", "https://evil.example", "PATCH")
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != fiber.StatusForbidden || res.Header.Get("Content-Type") != "application/problem+json" ||
				!strings.Contains(string(body), "FIELDCRM_CORS_ORIGINS") {
				t.Fatalf("preflight from a stranger: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			for h := range res.Header {
				if strings.HasPrefix(h, "Access-Control-") {
					t.Errorf("a refused origin got %s: %s", h, res.Header.Get(h))
				}
			}
		})
	}
}

func TestCORSHeadersOnResponsesToAllowedOriginsOnly(t *testing.T) {
	app := corsApp(t, "https://console.example.com")

	res := corsRequest(t, app, "GET", "https://console.example.com", "")
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "https://console.example.com" || res.Header.Get("Vary") != "Origin" {
		t.Fatalf("allowed GET: %d %v", res.StatusCode, res.Header)
	}
	exposed := strings.Split(res.Header.Get("Access-Control-Expose-Headers"), ", ")
	for _, h := range []string{"ETag", "Location", "Retry-After", "X-Request-ID", "X-Sync-Has-More", "X-Sync-Records", "X-Sync-Until"} {
		if !slices.Contains(exposed, h) {
			t.Errorf("Access-Control-Expose-Headers %v lacks %s", exposed, h)
		}
	}
	// An error must be readable too, or a browser app sees a network error
	// instead of the problem document.
	res = corsRequest(t, app, "PATCH", "https://console.example.com", "")
	if res.StatusCode != fiber.StatusPreconditionFailed || res.Header.Get("Access-Control-Allow-Origin") != "https://console.example.com" {
		t.Errorf("allowed PATCH failing: %d, Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}

	res = corsRequest(t, app, "GET", "https://evil.example", "")
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Vary") != "Origin" {
		t.Errorf("GET from a stranger: %d %v (the browser, not the server, withholds the body)", res.StatusCode, res.Header)
	}

	// With no origins configured nothing changes for anyone.
	res = corsRequest(t, corsApp(t), "GET", "https://console.example.com", "")
	if res.StatusCode != 200 || res.Header.Get("Vary") != "" || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off: %d %v", res.StatusCode, res.Header)
	}
	// An OPTIONS that is no preflight is the router's to answer.
	res = corsRequest(t, app, "OPTIONS", "https://console.example.com", "")
	if res.StatusCode != fiber.StatusMethodNotAllowed {
		t.Errorf("plain OPTIONS: %d", res.StatusCode)
	}
}

func TestCORSOriginsAreExactOrigins(t *testing.T) {
	for _, good := range []string{"https://console.example.com", "http://localhost:3000", "http://127.0.0.1:8081", "https://[::1]:8443"} {
		if err := CheckOrigin(good); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
	for _, bad := range []string{"*", "https://*.example.com", "https://console.example.com/", "https://console.example.com/app",
		"console.example.com", "ftp://example.com", "null", "https://Console.example.com", "https://user@example.com", "https://example.com?x"} {
		if err := CheckOrigin(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := newCORSPolicy([]string{"https://ok.example", "https://bad.example/"}, nil); err == nil {
		t.Error("a policy with a bad origin was built")
	}
}

// TestCORSCoversTheHeadersTheAPIUses reads the handlers' source: every
// request header the API reads must be one a preflight allows, and every
// response header it sets must be exposed (unless browsers expose it
// anyway), so a new header cannot silently be out of a browser app's reach.
func TestCORSCoversTheHeadersTheAPIUses(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	constant := map[string]string{}
	for name, value := range map[string]string{
		"HeaderAuthorization": fiber.HeaderAuthorization, "HeaderContentType": fiber.HeaderContentType, "HeaderIfMatch": fiber.HeaderIfMatch,
		"HeaderXRequestID": fiber.HeaderXRequestID, "HeaderETag": fiber.HeaderETag, "HeaderLocation": fiber.HeaderLocation,
		"HeaderRetryAfter": fiber.HeaderRetryAfter, "HeaderContentDisposition": fiber.HeaderContentDisposition,
		"HeaderWWWAuthenticate": fiber.HeaderWWWAuthenticate, "HeaderOrigin": fiber.HeaderOrigin,
		"HeaderAccessControlRequestMethod": fiber.HeaderAccessControlRequestMethod,
		"HeaderAccessControlAllowOrigin":   fiber.HeaderAccessControlAllowOrigin, "HeaderAccessControlExposeHeaders": fiber.HeaderAccessControlExposeHeaders,
		"HeaderContentEncoding": fiber.HeaderContentEncoding,
	} {
		constant[name] = value
	}
	// Set by the browser itself, exposed to scripts by every browser, or
	// acted on by the browser before a script sees the body (the encoding).
	browsers := []string{fiber.HeaderOrigin, fiber.HeaderAccessControlRequestMethod, fiber.HeaderContentType,
		fiber.HeaderAccessControlAllowOrigin, fiber.HeaderAccessControlExposeHeaders, fiber.HeaderContentEncoding}
	use := regexp.MustCompile(`c\.(Get|Set)\((?:fiber\.(Header[A-Za-z]+)|"([A-Za-z-]+)")`)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range use.FindAllStringSubmatch(string(src), -1) {
			header := m[3]
			if m[2] != "" {
				header = constant[m[2]]
				if header == "" {
					t.Errorf("%s uses fiber.%s: add it to this test's table", f, m[2])
					continue
				}
			}
			found++
			if slices.Contains(browsers, header) {
				continue
			}
			if m[1] == "Get" && !slices.Contains(corsRequestHeaders, header) {
				t.Errorf("%s reads request header %s, which a preflight does not allow", f, header)
			}
			if m[1] == "Set" && !slices.Contains(corsExposedHeaders, header) {
				t.Errorf("%s sets response header %s, which is not exposed to browser apps", f, header)
			}
		}
	}
	if found < 8 {
		t.Fatalf("found only %d header uses: the pattern no longer matches the code", found)
	}
}
