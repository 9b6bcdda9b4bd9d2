package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

func TestPanicInHandlerBecomes500ProblemAndIsLogged(t *testing.T) {
	var logs bytes.Buffer
	// The routes bind the services' methods, so they must not be nil; this
	// test calls none of them.
	s, err := New(Config{}, &accounts.Service{}, &crm.Service{}, nil, &watermelon.Engine{}, nil, nil, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.app.Get("/boom", func(*fiber.Ctx) error { panic("kaboom") })

	res, err := s.app.Test(httptest.NewRequest("GET", "/boom", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	var p Problem
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 500 || p.Status != 500 || p.Type != typeInternal || p.RequestID == "" {
		t.Fatalf("got %d %+v", res.StatusCode, p)
	}
	if strings.Contains(p.Detail, "kaboom") {
		t.Fatal("panic value leaked to the client")
	}
	if !strings.Contains(logs.String(), "kaboom") || !strings.Contains(logs.String(), "goroutine") {
		t.Fatalf("panic and stack not logged: %s", logs.String())
	}
	// The server still serves after the panic.
	res, _ = s.app.Test(httptest.NewRequest("GET", "/healthz", nil), -1)
	if res.StatusCode != 200 {
		t.Fatalf("healthz after panic: %d", res.StatusCode)
	}
}
