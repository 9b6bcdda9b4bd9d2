package api

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/models"
)

// Keys of values the middleware puts in c.Locals.
const (
	localRequestID = "fieldcrm.request_id"
	localActor     = "fieldcrm.actor"
	localSession   = "fieldcrm.session"
)

// maxRequestIDLength bounds a client-supplied X-Request-ID, which ends up in logs.
const maxRequestIDLength = 128

// requestContext gives every request an id (the client's X-Request-ID when it is
// sane, a new one otherwise), echoes it, puts it in the context the logs read,
// and records one log line and the metrics when the request ends.
func (s *Server) requestContext(c *fiber.Ctx) error {
	start := time.Now()
	id := c.Get(fiber.HeaderXRequestID)
	if !validRequestID(id) {
		id = models.NewID()
	}
	c.Locals(localRequestID, id)
	c.Set(fiber.HeaderXRequestID, id)
	info := &requestInfo{requestID: id}
	// The span is renamed by its route once routing found it.
	ctx, span := s.tracer.Start(c.UserContext(), "HTTP "+c.Method(), trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	c.SetUserContext(context.WithValue(ctx, requestInfoKey{}, info))

	err := c.Next()
	if err != nil {
		// Render now, so the status below is the one the client gets.
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			return herr
		}
	}
	status := c.Response().StatusCode()
	route := c.Route().Path
	if status == fiber.StatusNotFound && route == "/" {
		route = "unmatched" // keep unknown paths out of the metric labels
	}
	elapsed := time.Since(start)
	// Clone: Fiber reuses the method's bytes for the next request, and the
	// metric keeps its label strings forever.
	method := strings.Clone(c.Method())
	route = strings.Clone(route)
	s.metrics.observe(method, route, status, elapsed)
	if span.IsRecording() {
		span.SetName(method + " " + route)
		span.SetAttributes(attribute.String("http.request.method", method), attribute.String("http.route", route),
			attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(c.UserContext(), level, "request",
		"method", c.Method(), "route", route, "status", status,
		"duration_ms", float64(elapsed.Microseconds())/1000, "bytes_in", len(c.Request().Body()))
	return nil
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// recoverPanics turns a panic in a handler into a 500 problem and a logged stack,
// so one bad request never takes the process down.
func (s *Server) recoverPanics(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(c.UserContext(), "panic in handler", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Next()
}

// authenticate requires a valid bearer access token and stores the Actor.
func (s *Server) authenticate(c *fiber.Ctx) error {
	header := c.Get(fiber.HeaderAuthorization)
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return &accounts.AuthError{Reason: "send an access token: Authorization: Bearer <token>"}
	}
	actor, session, err := s.accounts.Authenticate(c.UserContext(), strings.TrimSpace(token))
	if err != nil {
		return err
	}
	c.Locals(localActor, actor)
	c.Locals(localSession, session)
	if info, ok := c.UserContext().Value(requestInfoKey{}).(*requestInfo); ok {
		info.tenant, info.user = actor.TenantID, actor.UserID
	}
	return c.Next()
}

// actorOf returns the signed-in user for REST handlers. Their writes are not
// a device's: the device id is dropped, so sync treats them like any other
// server-side change (the device learns of them by pulling).
func actorOf(c *fiber.Ctx) models.Actor {
	a := deviceActorOf(c)
	a.DeviceID = ""
	return a
}

// deviceActorOf returns the signed-in user with the device of their session,
// for the sync handlers.
func deviceActorOf(c *fiber.Ctx) models.Actor {
	a, _ := c.Locals(localActor).(models.Actor)
	return a
}

// requestInfo is what log lines of a request carry. The auth middleware fills
// tenant and user once it knows them.
type requestInfo struct {
	requestID, tenant, user string
}

type requestInfoKey struct{}

// LogHandler wraps a slog handler so that every record logged with a request's
// context carries request_id, tenant and user.
func LogHandler(h slog.Handler) slog.Handler { return contextHandler{h} }

type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		r.AddAttrs(slog.String("request_id", info.requestID))
		if info.tenant != "" {
			r.AddAttrs(slog.String("tenant", info.tenant), slog.String("user", info.user))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// httpMetrics are the Prometheus series of the HTTP layer, labelled by route
// template (never the raw path, whose ids would explode the series count).
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldcrm_http_requests_total", Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fieldcrm_http_request_duration_seconds", Help: "HTTP request latency by method and route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

// syncMetrics are the series of the sync protocol: how long pulls and
// pushes take, how many records and bytes they carry, and what pushes
// conflicted or were rejected, by table (a fixed set of names).
type syncMetrics struct {
	pullDuration, pushDuration prometheus.Histogram
	pullRecords, pushRecords   prometheus.Histogram
	pullBytes, pushBytes       prometheus.Histogram
	conflicts, rejections      *prometheus.CounterVec
}

func newSyncMetrics(reg prometheus.Registerer) *syncMetrics {
	duration := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help,
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}})
	}
	// Up to a page of 5,000 records (FIELDCRM_SYNC_PAGE_SIZE), and pushes
	// of a device that was offline for days.
	records := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help,
			Buckets: []float64{0, 1, 10, 50, 100, 500, 1000, 2500, 5000, 10000}})
	}
	// From an empty pull (a few hundred bytes) to the 8 MiB body limit.
	size := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help,
			Buckets: prometheus.ExponentialBuckets(256, 4, 10)})
	}
	m := &syncMetrics{
		pullDuration: duration("fieldcrm_sync_pull_duration_seconds", "Time to answer a sync pull that succeeded, in seconds."),
		pushDuration: duration("fieldcrm_sync_push_duration_seconds", "Time to apply a sync push that succeeded, in seconds."),
		pullRecords:  records("fieldcrm_sync_pull_records", "Records (created, updated and deleted) in each pull's answer."),
		pushRecords:  records("fieldcrm_sync_push_records", "Records (created, updated and deleted) in each push."),
		pullBytes:    size("fieldcrm_sync_pull_bytes", "Size of each pull's answer as JSON, before compression, in bytes."),
		pushBytes:    size("fieldcrm_sync_push_bytes", "Size of each push's body as received, in bytes."),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldcrm_sync_conflicts_total", Help: "Pushed records applied over an edit made on the server since the device's pull (a conflict recorded), by table.",
		}, []string{"table"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldcrm_sync_rejections_total", Help: "Pushed records refused one by one (the device keeps them as changed), by table.",
		}, []string{"table"}),
	}
	reg.MustRegister(m.pullDuration, m.pushDuration, m.pullRecords, m.pushRecords, m.pullBytes, m.pushBytes, m.conflicts, m.rejections)
	return m
}
