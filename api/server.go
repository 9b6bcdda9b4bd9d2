// Package api is fieldcrm's HTTP interface: a Fiber app with JWT auth, problem
// documents for every error, request ids, Prometheus metrics and an OpenAPI
// document generated from the same route table that registers the handlers.
// Handlers parse, call one service method and render; rules live below.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/crm/imports"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// accountService is what the handlers need of accounts.Service.
type accountService interface {
	Signup(ctx context.Context, in models.Signup, clientIP string) (accounts.Tokens, models.User, error)
	Login(ctx context.Context, in models.Login, clientIP string) (accounts.Tokens, error)
	Refresh(ctx context.Context, refreshToken, clientIP string) (accounts.Tokens, error)
	Logout(ctx context.Context, sessionID string) error
	Authenticate(ctx context.Context, accessToken string) (models.Actor, string, error)
	Me(ctx context.Context, a models.Actor) (accounts.Profile, error)
	CreateUser(ctx context.Context, a models.Actor, in models.NewUser) (models.User, error)
	Users(ctx context.Context, a models.Actor, o accounts.UserListOptions) ([]models.User, error)
	User(ctx context.Context, a models.Actor, id string) (models.User, error)
	PatchUser(ctx context.Context, a models.Actor, id string, p models.UserPatch) (models.User, error)
	CreateTeam(ctx context.Context, a models.Actor, in models.NewTeam) (models.Team, error)
	Teams(ctx context.Context, a models.Actor) ([]models.Team, error)
	Team(ctx context.Context, a models.Actor, id string) (models.Team, error)
}

// Check is one dependency /readyz verifies, such as MongoDB or Redis.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Config holds the HTTP settings.
type Config struct {
	// BodyLimit is the largest request body accepted, in bytes (default 8 MiB).
	BodyLimit int
	// ImportBodyLimit is the largest spreadsheet upload (POST /v1/imports),
	// in bytes (default 128 MiB).
	ImportBodyLimit int
	// TrustedProxies lists the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For header names the client; empty trusts none. The client
	// is the rightmost address in it that is not one of them (clientIP).
	TrustedProxies []string
	// SignupClosed refuses POST /v1/auth/signup with 403: nobody can create a
	// tenant over HTTP (FIELDCRM_SIGNUP=off).
	SignupClosed bool
	// ShutdownTimeout bounds how long in-flight requests may finish on shutdown.
	ShutdownTimeout time.Duration
	Version         string
	// Metrics is the application's registry: the server adds its series
	// (requests, sync) to it, and SystemHandler serves it. Nil makes one of
	// the server's own.
	Metrics *prometheus.Registry
	// Tracer, when set, makes a span of each request, named by its route.
	Tracer trace.Tracer
	// CORSOrigins are the exact origins (https://console.example.com) whose
	// browser apps may call the API; empty sends no CORS headers, so
	// browsers allow same-origin calls only (see cors.go).
	CORSOrigins []string
	// DependencyGrace is how long a dependency (MongoDB, Redis) may fail
	// before /readyz makes this process unready; 0 never does (see
	// Readiness).
	DependencyGrace time.Duration
	// Now is the clock of the dependency grace (nil: time.Now).
	Now func() time.Time
}

// DefaultBodyLimit is 8 MiB: a sync push of a device that was offline for days
// (thousands of edited records) fits; a flood of large bodies still cannot
// exhaust memory.
const DefaultBodyLimit = 8 << 20

// DefaultImportBodyLimit is 128 MiB: a 100,000-row customer spreadsheet is
// 10 to 30 MB as CSV, less as XLSX.
const DefaultImportBodyLimit = 128 << 20

// ImportReadTimeout is how long a client may take to send a spreadsheet.
const ImportReadTimeout = 10 * time.Minute

// ReadTimeout is how long a client may take to send any other request, and
// WriteTimeout how long the server may take to write a response (a large
// first-sync page, a streamed export). A proxy in front must allow at least
// as much (deploy/nginx.conf, the Ingress; go test ./deploy checks them).
const (
	ReadTimeout  = 30 * time.Second
	WriteTimeout = 60 * time.Second
)

// Server is the HTTP API.
type Server struct {
	app      *fiber.App
	accounts accountService
	// crm is the CRM service, used concretely: its generic Records cannot be
	// named by one interface, and handlers call nothing but its methods.
	crm      *crm.Service
	imports  *imports.Runner
	sync     *watermelon.Engine
	notify   notifyService
	checks   []Check
	log      *slog.Logger
	metrics  *httpMetrics
	syncm    *syncMetrics
	registry *prometheus.Registry
	tracer   trace.Tracer
	routes   []route
	cfg      Config
	proxies  proxies
	// life is what /healthz and /readyz answer from.
	life *lifecycle
}

// New builds the API. Nothing listens until Listen is called. It fails only on
// a TrustedProxies entry that is neither an address nor a CIDR, or a
// CORSOrigins entry that is not an origin.
func New(cfg Config, acc accountService, crmService *crm.Service, importRunner *imports.Runner, syncEngine *watermelon.Engine, notifications notifyService, checks []Check, log *slog.Logger) (*Server, error) {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.ImportBodyLimit <= 0 {
		cfg.ImportBodyLimit = DefaultImportBodyLimit
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 20 * time.Second
	}
	trusted, err := parseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("fieldcrm")
	}
	s := &Server{accounts: acc, crm: crmService, imports: importRunner, sync: syncEngine, notify: notifications, checks: checks, log: log, cfg: cfg,
		registry: cfg.Metrics, tracer: cfg.Tracer, proxies: trusted}
	s.metrics = newHTTPMetrics(s.registry)
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s.life = newLifecycle(s.registry, now, cfg.DependencyGrace)
	s.syncm = newSyncMetrics(s.registry)
	if syncEngine != nil {
		for _, t := range syncEngine.Schema().Tables {
			s.syncm.conflicts.WithLabelValues(t.Name)
			s.syncm.rejections.WithLabelValues(t.Name)
		}
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "fieldcrm",
		BodyLimit:             cfg.BodyLimit,
		ErrorHandler:          s.errorHandler,
		DisableStartupMessage: true,
		// No ProxyHeader: Fiber's c.IP() would then return X-Forwarded-For
		// as the client sent it. The client's address is s.clientIP(c).
		EnableTrustedProxyCheck: len(cfg.TrustedProxies) > 0,
		TrustedProxies:          cfg.TrustedProxies,
		ReadTimeout:             ReadTimeout,
		WriteTimeout:            WriteTimeout,
		IdleTimeout:             120 * time.Second,
		JSONEncoder:             json.Marshal,
		JSONDecoder:             json.Unmarshal,
	})
	// A spreadsheet upload may be far larger, and take far longer to send,
	// than any other body. fasthttp chooses the limits of each request once
	// its header is read, before the body, so only POST /v1/imports gets the
	// larger ones and no other route buffers more than BodyLimit.
	s.app.Server().HeaderReceived = func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		path, _, _ := bytes.Cut(h.RequestURI(), []byte("?"))
		if string(h.Method()) == fiber.MethodPost && string(path) == "/v1/imports" {
			return fasthttp.RequestConfig{MaxRequestBodySize: cfg.ImportBodyLimit, ReadTimeout: ImportReadTimeout}
		}
		return fasthttp.RequestConfig{}
	}
	// Pulls, lists and exports are large JSON and CSV, read by phones on
	// mobile networks: compressed when the client accepts it (every HTTP
	// client of a phone does), at the fastest level, which keeps most of
	// the gain for a fraction of the CPU. compressBuffered compresses the
	// answers built in memory (fasthttp leaves alone bodies under 200
	// bytes); streamed ones compress themselves (see streamBody).
	s.routes = s.routeTable()
	methods := make([]string, 0, len(s.routes))
	for _, r := range s.routes {
		methods = append(methods, r.method)
	}
	cors, err := newCORSPolicy(cfg.CORSOrigins, methods)
	if err != nil {
		return nil, err
	}
	s.app.Use(s.requestContext, s.recoverPanics, cors.handle, compressBuffered())
	for _, r := range s.routes {
		handlers := []fiber.Handler{}
		if r.auth {
			handlers = append(handlers, s.authenticate)
		}
		s.app.Add(r.method, r.path, append(handlers, r.handler)...)
	}
	return s, nil
}

// App exposes the Fiber app, for tests (app.Test) and for Listen.
func (s *Server) App() *fiber.App { return s.app }

// Listen serves on addr until ctx is cancelled, then shuts down gracefully
// (see Serve).
func (s *Server) Listen(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully: it
// stops accepting and lets in-flight requests finish for up to
// ShutdownTimeout. Connections that never sent a byte hold nothing to finish
// and are closed once they have been silent for silentAfter.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	quiet := newQuietListener(ln)
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(quiet) }()
	s.MarkStarted()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Unready at once, before anything else stops: the probes on every
	// port say so while in-flight requests finish.
	s.life.stopping.Store(true)
	s.log.Info("shutting down HTTP server", "timeout", s.cfg.ShutdownTimeout.String())
	shut := make(chan error, 1)
	go func() { shut <- s.app.ShutdownWithTimeout(s.cfg.ShutdownTimeout) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-shut:
			// fasthttp's shutdown closes only the listeners its Serve has
			// registered: one that came before Serve got that far returned
			// at once and left Serve to wait in Accept for good. Closing
			// the listener here ends Serve either way (a second close
			// only fails).
			_ = quiet.Close()
			if err != nil {
				return err
			}
			return <-errc
		case now := <-tick.C:
			if n := quiet.closeSilent(now); n > 0 {
				s.log.Info("closed connections that never sent a request", "connections", n)
			}
		}
	}
}
