package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/api/accounts"
	"github.com/fieldcrm/fieldcrm/models"
)

// route is one endpoint: how Fiber serves it and how the OpenAPI document
// describes it. Registering through this table is what keeps the document whole.
type route struct {
	method  string
	path    string // Fiber syntax: /v1/users/:id
	tag     string
	summary string
	auth    bool
	// request and response are zero values of the body types, for the schemas.
	request  any
	response any
	status   int   // success status
	errors   []int // documented error statuses besides 401 (implied by auth) and 500
	handler  fiber.Handler
}

func (s *Server) routeTable() []route {
	const (
		tagAuth   = "auth"
		tagUsers  = "users"
		tagTeams  = "teams"
		tagSystem = "system"
	)
	return []route{
		{method: "POST", path: "/v1/auth/signup", tag: tagAuth, summary: "Create a tenant and its first admin; returns tokens",
			request: models.Signup{}, response: signupResponse{}, status: 201, errors: []int{400, 409, 415, 422}, handler: s.signup},
		{method: "POST", path: "/v1/auth/login", tag: tagAuth, summary: "Sign in with e-mail and password on a device",
			request: models.Login{}, response: accounts.Tokens{}, status: 200, errors: []int{400, 401, 415, 422, 429}, handler: s.login},
		{method: "POST", path: "/v1/auth/refresh", tag: tagAuth, summary: "Exchange a refresh token for new tokens (rotation; reuse revokes the session)",
			request: refreshRequest{}, response: accounts.Tokens{}, status: 200, errors: []int{400, 401, 415, 422}, handler: s.refresh},
		{method: "POST", path: "/v1/auth/logout", tag: tagAuth, summary: "End this session: its access and refresh tokens stop working",
			auth: true, status: 204, handler: s.logout},
		{method: "GET", path: "/v1/me", tag: tagUsers, summary: "The signed-in user, their tenant and the teams they manage",
			auth: true, response: accounts.Profile{}, status: 200, handler: s.me},
		{method: "POST", path: "/v1/users", tag: tagUsers, summary: "Create a user (admins: anyone; managers: reps in their teams)",
			auth: true, request: models.NewUser{}, response: models.User{}, status: 201, errors: []int{400, 403, 409, 415, 422},
			handler: createOne("/v1/users", s.accounts.CreateUser, func(u models.User) string { return u.ID })},
		{method: "GET", path: "/v1/users", tag: tagUsers, summary: "List the users you may see (?role=&active=&limit=&after=)",
			auth: true, response: page[models.User]{}, status: 200, errors: []int{422}, handler: s.listUsers},
		{method: "GET", path: "/v1/users/:id", tag: tagUsers, summary: "One user",
			auth: true, response: models.User{}, status: 200, errors: []int{404}, handler: readOne(s.accounts.User)},
		{method: "PATCH", path: "/v1/users/:id", tag: tagUsers, summary: "Change a user's profile, role, team, manager, activity or password",
			auth: true, request: models.UserPatch{}, response: models.User{}, status: 200, errors: []int{400, 403, 404, 415, 422}, handler: s.patchUser},
		{method: "POST", path: "/v1/teams", tag: tagTeams, summary: "Create a team (admins)",
			auth: true, request: models.NewTeam{}, response: models.Team{}, status: 201, errors: []int{400, 403, 415, 422},
			handler: createOne("/v1/teams", s.accounts.CreateTeam, func(t models.Team) string { return t.ID })},
		{method: "GET", path: "/v1/teams", tag: tagTeams, summary: "List the teams you may see",
			auth: true, response: page[models.Team]{}, status: 200, handler: s.listTeams},
		{method: "GET", path: "/v1/teams/:id", tag: tagTeams, summary: "One team",
			auth: true, response: models.Team{}, status: 200, errors: []int{404}, handler: readOne(s.accounts.Team)},
		{method: "GET", path: "/healthz", tag: tagSystem, summary: "The process is up", response: healthResponse{}, status: 200, handler: s.healthz},
		{method: "GET", path: "/readyz", tag: tagSystem, summary: "MongoDB and Redis answer", response: healthResponse{}, status: 200, errors: []int{503}, handler: s.readyz},
		{method: "GET", path: "/metrics", tag: tagSystem, summary: "Prometheus metrics (text exposition format)", status: 200, handler: s.metricsHandler()},
		{method: "GET", path: "/v1/openapi.json", tag: tagSystem, summary: "This OpenAPI 3.1 document", status: 200, handler: s.openAPI},
	}
}
