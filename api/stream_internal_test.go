package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// A streamed body that fails part-way, or whose writer panics, reaches the
// client as a broken transfer, never as a complete shorter body, and the
// server goes on serving.
func TestAStreamCutShortIsABrokenTransfer(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	ended := make(chan error, 2)
	for path, fail := range map[string]func(){
		"/error": func() {},
		"/panic": func() { panic("a bug in a writer") },
	} {
		app.Get(path, func(c *fiber.Ctx) error {
			streamBody(c, time.Minute, true, func(ctx context.Context, w io.Writer) error {
				if _, err := w.Write(make([]byte, 64<<10)); err != nil {
					return err
				}
				fail()
				return errors.New("the store went away")
			}, func(ctx context.Context, err error) { ended <- err })
			return nil
		})
	}
	app.Get("/ok", func(c *fiber.Ctx) error { return c.SendString("ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	base := "http://" + ln.Addr().String()
	for _, path := range []string{"/error", "/panic"} {
		for _, encoding := range []string{"", "gzip"} {
			req, _ := http.NewRequest("GET", base+path, nil)
			if encoding != "" {
				req.Header.Set("Accept-Encoding", encoding) // set by hand: the transport leaves the body as it came
			}
			// Broken before the headers or in the body: either way an error.
			if res, err := http.DefaultClient.Do(req); err == nil {
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err == nil {
					t.Fatalf("%s (%q): a body of %d bytes read whole, want a broken transfer", path, encoding, len(body))
				}
			}
			if got := <-ended; got == nil {
				t.Fatalf("%s: finish was told it ended well", path)
			}
		}
	}
	res, err := http.Get(base + "/ok")
	if err != nil {
		t.Fatalf("after the broken streams: %v", err)
	}
	res.Body.Close()
}
