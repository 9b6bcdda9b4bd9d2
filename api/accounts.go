package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/internal/accounts"
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

// fieldRules are the request's required fields, for the OpenAPI document.
func (refreshRequest) fieldRules() map[string]models.FieldRule {
	return map[string]models.FieldRule{"refresh_token": {Required: true}}
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
	// The phone signs out: its pushes stop with its session.
	if err := s.accounts.Logout(c.UserContext(), session); err != nil {
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

func (s *Server) listUsers(c *fiber.Ctx) error {
	limit, err := queryInt(c, "limit", defaultPageSize, 1, maxPageSize)
	if err != nil {
		return err
	}
	active, err := queryBool(c, "active")
	if err != nil {
		return err
	}
	role := models.Role(query(c, "role"))
	if role != "" && !role.Valid() {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "role", Message: "must be one of admin, manager, rep"}}}
	}
	// Ask for one extra to know whether another page follows.
	users, err := s.accounts.Users(c.UserContext(), actorOf(c), accounts.UserListOptions{
		Role: role, Active: active, Limit: limit + 1, AfterID: query(c, "after"),
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
	teams, err := s.accounts.Teams(c.UserContext(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(page[models.Team]{Data: teams})
}
