package api

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type healthResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// healthz is the liveness probe (see Liveness).
func (s *Server) healthz(c *fiber.Ctx) error {
	alive, loops := s.Liveness()
	if !alive {
		return c.Status(fiber.StatusServiceUnavailable).JSON(healthResponse{Status: "stuck", Checks: loops})
	}
	return c.JSON(healthResponse{Status: "ok", Checks: loops})
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

func (s *Server) metricsHandler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
}

func (s *Server) openAPI(c *fiber.Ctx) error {
	return c.JSON(s.openAPIDocument())
}
