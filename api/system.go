package api

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
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
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
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
	if out.Status != "ok" {
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
