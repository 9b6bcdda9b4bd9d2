package api_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserPath finds headless Chromium. Without it the test is skipped on a
// developer's machine, but fails in CI (.ci/run installs it and sets
// FIELDCRM_E2E), so a CI that lost its browser cannot pass silently.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FIELDCRM_E2E") != "" || os.Getenv("CI") != "" {
		t.Fatal("no Chromium on this machine: .ci/run installs the Debian package chromium")
	}
	t.Skip("no Chromium on this machine (apt-get install chromium); CI runs this test")
	return ""
}

// TestBrowserAppOnAnAllowedOriginCallsTheAPI runs a real browser: a page
// served from one origin calls the API on another with fetch(), sending an
// Authorization header and a PATCH with If-Match (each forces a preflight),
// and reads the JSON and the ETag the API exposes. The same call from a page
// on an origin the API does not list fails in the browser, and the PATCH
// never reaches the API.
func TestBrowserAppOnAnAllowedOriginCallsTheAPI(t *testing.T) {
	chromium := browserPath(t)
	page := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>console</title><p>a browser app</p>")
	}
	console := httptest.NewServer(http.HandlerFunc(page))
	defer console.Close()
	stranger := httptest.NewServer(http.HandlerFunc(page))
	defer stranger.Close()

	h := newHarnessWith(t, func(c *harnessConfig) { c.api.CORSOrigins = []string{console.URL} })
	admin := h.signup("Browser Trading", "admin@browser.example")
	r := h.do("POST", "/v1/customers", admin.access, map[string]any{"name": "Northwind"})
	h.expect(r, 201, "create a customer")
	customer := r.json(t)["id"].(string)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiURL := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.server.Serve(ctx, ln) }()
	t.Cleanup(func() { stop(); <-served })

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	browser, cancelTimeout := context.WithTimeout(browser, 90*time.Second)
	defer cancelTimeout()

	// The app's call: rename the customer, at the version it read.
	call := func(newName string) string {
		return fmt.Sprintf(`(async () => {
			try {
				const res = await fetch(%q, {
					method: "PATCH",
					headers: {"Authorization": "Bearer %s", "Content-Type": "application/json", "If-Match": '"1"'},
					body: JSON.stringify({name: %q}),
				});
				const body = await res.json();
				return JSON.stringify({status: res.status, etag: res.headers.get("ETag"), name: body.name});
			} catch (e) {
				return "failed: " + e.name + ": " + e.message;
			}
		})()`, apiURL+"/v1/customers/"+customer, admin.access, newName)
	}
	run := func(origin, script string) string {
		t.Helper()
		if _, err := chromedp.Run(browser, chromedp.Navigate(origin+"/")); err != nil {
			t.Fatalf("browser opens %s: %v", origin, err)
		}
		out, err := chromedp.Run(browser, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("browser on %s: %v", origin, err)
		}
		return out
	}

	if got := run(stranger.URL, call("Stolen")); !strings.HasPrefix(got, "failed: TypeError") {
		t.Errorf("fetch from an origin the API does not list: %s, want a TypeError (blocked by CORS)", got)
	}
	if got, want := run(console.URL, call("Northwind Traders")), `{"status":200,"etag":"\"2\"","name":"Northwind Traders"}`; got != want {
		t.Errorf("fetch from the allowed origin: %s, want %s", got, want)
	}
	// The refused preflight kept the PATCH from being sent at all: the only
	// change is the allowed one.
	r = h.do("GET", "/v1/customers/"+customer, admin.access, nil)
	h.expect(r, 200, "read the customer")
	if got := r.json(t); got["name"] != "Northwind Traders" || got["version"] != float64(2) {
		t.Errorf("customer after both calls: name %v version %v", got["name"], got["version"])
	}
	if errors.Is(browser.Err(), context.DeadlineExceeded) {
		t.Fatal("the browser took too long")
	}
}

// TestPreflightIsAnsweredBeforeTheRouter: on the real server, a preflight
// of a route that has no OPTIONS method is the CORS policy's to answer, not
// the router's 405, for an allowed origin and for another.
func TestPreflightIsAnsweredBeforeTheRouter(t *testing.T) {
	h := newHarnessWith(t, func(c *harnessConfig) { c.api.CORSOrigins = []string{"https://console.example.com"} })
	for origin, want := range map[string]int{"https://console.example.com": 204, "https://stranger.example": 403} {
		r := h.do("OPTIONS", "/v1/customers/c1", "", nil, "Origin", origin, "Access-Control-Request-Method", "PATCH")
		if r.status != want {
			t.Errorf("preflight from %s: %d %s, want %d", origin, r.status, r.body, want)
		}
	}
	r := h.do("OPTIONS", "/v1/customers/c1", "", nil)
	if r.status != 405 {
		t.Errorf("OPTIONS without a preflight's headers: %d, want the router's 405", r.status)
	}
}
