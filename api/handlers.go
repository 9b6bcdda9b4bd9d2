package api

import (
	"context"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fieldcrm/fieldcrm/api/accounts"
	"github.com/fieldcrm/fieldcrm/models"
)

type signupResponse struct {
	accounts.Tokens
	User models.User `json:"user"`
}

func (s *Server) signup(c *fiber.Ctx) error {
	if s.cfg.SignupClosed {
		return newProblem(fiber.StatusForbidden, typeSignupClosed, "Sign-up is closed",
			"this server does not create new organisations; ask your administrator for an account")
	}
	var in models.Signup
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	tokens, user, err := s.accounts.Signup(c.UserContext(), in, s.clientIP(c))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(signupResponse{Tokens: tokens, User: user})
}

func (s *Server) login(c *fiber.Ctx) error {
	var in models.Login
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	tokens, err := s.accounts.Login(c.UserContext(), in, s.clientIP(c))
	if err != nil {
		return err
	}
	return c.JSON(tokens)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) refresh(c *fiber.Ctx) error {
	var in refreshRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	tokens, err := s.accounts.Refresh(c.UserContext(), in.RefreshToken, s.clientIP(c))
	if err != nil {
		return err
	}
	return c.JSON(tokens)
}

func (s *Server) logout(c *fiber.Ctx) error {
	session, _ := c.Locals(localSession).(string)
	if err := s.accounts.Logout(c.UserContext(), session); err != nil {
		return err
	}
	// The phone signs out: its pushes stop with its session.
	a := deviceActorOf(c)
	if err := s.notify.UnregisterDevice(c.UserContext(), a, a.DeviceID); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) me(c *fiber.Ctx) error {
	p, err := s.accounts.Me(c.UserContext(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(p)
}

// page is the envelope of every list: the items and the cursor of the next page.
type page[T any] struct {
	Data []T `json:"data"`
	// NextAfter is passed as ?after= to get the next page; null on the last page.
	NextAfter *string `json:"next_after"`
}

// Page sizes of list endpoints.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

func (s *Server) listUsers(c *fiber.Ctx) error {
	if err := onlyParams(c, "role", "active", "limit", "after"); err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", defaultPageSize, 1, maxPageSize)
	if err != nil {
		return err
	}
	active, err := queryBool(c, "active")
	if err != nil {
		return err
	}
	role := models.Role(c.Query("role"))
	if role != "" && !role.Valid() {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "role", Message: "must be one of admin, manager, rep"}}}
	}
	// Ask for one extra to know whether another page follows.
	users, err := s.accounts.Users(c.UserContext(), actorOf(c), accounts.UserListOptions{
		Role: role, Active: active, Limit: limit + 1, AfterID: strings.Clone(c.Query("after")),
	})
	if err != nil {
		return err
	}
	out := page[models.User]{Data: users}
	if len(users) > limit {
		out.Data = users[:limit]
		next := users[limit-1].ID
		out.NextAfter = &next
	}
	return c.JSON(out)
}

func (s *Server) patchUser(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var p models.UserPatch
	if err := decodeJSON(c, &p); err != nil {
		return err
	}
	u, err := s.accounts.PatchUser(c.UserContext(), actorOf(c), id, p)
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (s *Server) listTeams(c *fiber.Ctx) error {
	if err := onlyParams(c); err != nil {
		return err
	}
	teams, err := s.accounts.Teams(c.UserContext(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(page[models.Team]{Data: teams})
}

// actorCall is a service method that acts for the signed-in user on an input:
// an id, or a decoded body.
type actorCall[In, Out any] func(ctx context.Context, a models.Actor, in In) (Out, error)

// createOne serves POST of a new record: decode the body (refusing the
// server's fields of a CRM record), create it as the actor, answer 201 with
// its Location under collection and, for a CRM record, its ETag.
func createOne[In, Out any](collection string, create actorCall[In, Out], idOf func(Out) string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in In
		if err := decodeRecord(c, &in); err != nil {
			return err
		}
		out, err := create(c.UserContext(), actorOf(c), in)
		if err != nil {
			return err
		}
		c.Location(collection + "/" + idOf(out))
		setETag(c, &out)
		return c.Status(fiber.StatusCreated).JSON(out)
	}
}

// readOne serves GET of one record by the :id path parameter (and the POST
// actions on one record that take no body, such as claim); the service answers
// models.ErrNotFound for what the actor may not see. A CRM record's version
// goes out as its ETag.
func readOne[Out any](get actorCall[string, Out]) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		out, err := get(c.UserContext(), actorOf(c), id)
		if err != nil {
			return err
		}
		setETag(c, &out)
		return c.JSON(out)
	}
}

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
