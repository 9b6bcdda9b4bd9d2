package api

import (
	"encoding/json"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type healthResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// liveness is what /healthz answers on either port (see Liveness).
func (s *Server) liveness() (healthResponse, bool) {
	alive, loops := s.Liveness()
	if !alive {
		return healthResponse{Status: "stuck", Checks: loops}, false
	}
	return healthResponse{Status: "ok", Checks: loops}, true
}

// healthz is the liveness probe (see Liveness).
func (s *Server) healthz(c *fiber.Ctx) error {
	out, alive := s.liveness()
	if !alive {
		return c.Status(fiber.StatusServiceUnavailable).JSON(out)
	}
	return c.JSON(out)
}

// readyz is the readiness probe (see Readiness).
func (s *Server) readyz(c *fiber.Ctx) error {
	r := s.Readiness(c.UserContext())
	out := healthResponse{Status: r.Status, Checks: r.Checks}
	if !r.Ready {
		return c.Status(fiber.StatusServiceUnavailable).JSON(out)
	}
	return c.JSON(out)
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
		out, alive := s.liveness()
		writeHealth(w, out, alive)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ready := s.Readiness(r.Context())
		writeHealth(w, healthResponse{Status: ready.Status, Checks: ready.Checks}, ready.Ready)
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
