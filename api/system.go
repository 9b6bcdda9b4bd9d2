package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type healthResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(healthResponse{Status: "ok"})
}

// readyz answers 200 only when every dependency answers within 2 seconds, so a
// load balancer stops sending traffic to a replica that lost MongoDB or Redis.
func (s *Server) readyz(c *fiber.Ctx) error {
	out, ok := s.readiness(c.UserContext())
	if !ok {
		return c.Status(fiber.StatusServiceUnavailable).JSON(out)
	}
	return c.JSON(out)
}

// readiness pings every dependency, each within what is left of 2 seconds,
// and says whether all answered: what /readyz answers on either port.
func (s *Server) readiness(ctx context.Context) (healthResponse, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out := healthResponse{Status: "ok", Checks: map[string]string{}}
	for _, check := range s.checks {
		if err := check.Ping(ctx); err != nil {
			out.Status = "unavailable"
			out.Checks[check.Name] = "error: " + err.Error()
			continue
		}
		out.Checks[check.Name] = "ok"
	}
	return out, out.Status == "ok"
}

// SystemHandler serves the process's own port, apart from the API's (serve
// listens on FIELDCRM_METRICS_ADDR): GET /metrics (Prometheus' text format,
// the application's registry), /healthz and /readyz (as on the API's port).
// A worker process, which serves no API, is probed and scraped there; and
// the metrics stay off the public port.
func (s *Server) SystemHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, healthResponse{Status: "ok"}, true)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		out, ok := s.readiness(r.Context())
		writeHealth(w, out, ok)
	})
	return mux
}

func writeHealth(w http.ResponseWriter, out healthResponse, ok bool) {
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) openAPI(c *fiber.Ctx) error {
	return c.JSON(s.openAPIDocument())
}
