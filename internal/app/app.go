// Package app builds fieldcrm: storage, Redis, the services and the HTTP
// server, from a typed Config. It is the one place the application is
// assembled; `fieldcrm serve`, the one-shot commands, the benchmarks and the
// integration tests all build it through New, so what they run is what
// production runs. It reads no environment: cmd/fieldcrm does that.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/api"
	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/crm/imports"
	"github.com/fieldcrm/fieldcrm/internal/redis/counter"
	"github.com/fieldcrm/fieldcrm/internal/redis/ratelimit"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/telemetry"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/notify"
	"github.com/fieldcrm/fieldcrm/sync/cursor"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// Config is everything the application is built from. cmd/fieldcrm fills it
// from the environment and flags; tests fill it in code (see apptest).
type Config struct {
	Storage Storage
	Redis   Redis
	// JWTSecret signs access tokens; DataKey (32 bytes) seals national ID
	// numbers. Both must be the same on every replica.
	JWTSecret []byte
	DataKey   []byte
	HTTP      api.Config
	Accounts  Accounts
	// SyncPageSize is the most records one pull returns (0: the engine's default).
	SyncPageSize int
	// ReminderClaim is how long a worker holds a due reminder it claimed
	// before another may take it (0: notify.DefaultClaim).
	ReminderClaim time.Duration
	// ReminderDrain is how long the pushes under way when the worker is told
	// to stop may go on (0: notify.DefaultDrain); see notify.Worker.Drain.
	ReminderDrain time.Duration
	// FCM is where pushes go; with neither a project nor a credentials file,
	// reminders reach the in-app inbox and the log only.
	FCM notify.FCMConfig
	// Tracing, when its Endpoint is set, sends spans of requests, database
	// calls and pushes to an OTLP/HTTP collector.
	Tracing telemetry.TracingConfig
}

// Accounts are the settings of sign-in and sign-up.
type Accounts struct {
	Password accounts.PasswordParams
	// Hashing bounds the password hashes run at once (zero: chosen from the
	// CPUs and memory, accounts.DefaultHashLimit).
	Hashing accounts.HashLimit
	// LoginPerEmail counts failed sign-ins per e-mail; LoginPerAddress per
	// client address; RefreshPerAddress refreshes with unknown tokens per
	// client address; SignupPerAddress every sign-up per client address.
	// Each must allow at least one attempt.
	LoginPerEmail, LoginPerAddress, RefreshPerAddress, SignupPerAddress Limit
}

// Limit allows Max attempts within Window.
type Limit struct {
	Max    int64
	Window time.Duration
}

// App is the built application. Its fields are the services, shared by
// whoever runs it (serve's roles, a command, a test); Close releases them.
type App struct {
	Store     *store.Store
	Redis     redis.UniversalClient
	Accounts  *accounts.Service
	Sequencer *cursor.Sequencer
	CRM       *crm.Service
	Sync      *watermelon.Engine
	// Imports starts spreadsheet imports (POST /v1/imports and the import command).
	Imports *imports.Runner
	// Devices, Schedule, Scheduler and Worker are reminders and push.
	Devices   *notify.Devices
	Schedule  *notify.Schedule
	Scheduler *notify.Scheduler
	// Worker sends due reminders once its Run is called (serve's worker role).
	Worker *notify.Worker
	Server *api.Server
	// Telemetry holds the application's metrics registry (served by
	// Server.SystemHandler) and its tracer.
	Telemetry *telemetry.Telemetry
	// Alone says no other process can share this application's data: it
	// opened the embedded SQLite engine (one process per data dir) and an
	// in-process Redis itself. Storage or Redis given by an option, or named
	// by URL, may be shared.
	Alone bool

	cfg     Config
	opts    options
	log     *slog.Logger
	closers []func(context.Context)
	// redisWatch sees the Redis named by URL become another server;
	// ownRedis says Redis is the in-process one (see cursor.Sequencer).
	redisWatch *cursor.Watch
	ownRedis   bool
}

// Option replaces a part of the application, for tests and benchmarks.
type Option func(*options)

type options struct {
	now   func() time.Time
	store *store.Store
	redis redis.UniversalClient
	// soleRedis says no other process shares redis (see WithSoleRedis).
	soleRedis bool
	log       *slog.Logger
	checks    []api.Check
}

// WithClock makes now the application's clock: token expiry, reminders,
// digests and every time the CRM stamps. The sync sequencer keeps the wall
// clock: its leases are compared across processes through Redis.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithStore builds the application on st, opened and migrated by the
// caller, who also closes it; Config.Storage is then unused.
func WithStore(st *store.Store) Option { return func(o *options) { o.store = st } }

// WithRedis builds the application on client, which the caller closes;
// Config.Redis.URL is then unused (its Prefix still applies).
func WithRedis(client redis.UniversalClient) Option {
	return func(o *options) { o.redis = client }
}

// WithSoleRedis says that no other process shares the Redis given by
// WithRedis, as none shares the in-process one of the default deployment: a
// test's application stands for that deployment. After Redis lost its data
// the sync sequencer then knows every write still holding a number (see
// cursor.Sequencer.SoleProcess).
func WithSoleRedis() Option { return func(o *options) { o.soleRedis = true } }

// WithLogger sets the logger of the application (default slog.Default()).
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// WithHealthChecks replaces what /readyz checks (by default the database
// and Redis).
func WithHealthChecks(checks ...api.Check) Option {
	return func(o *options) { o.checks = checks }
}

// New builds the application: it opens (and migrates) the storage, connects
// to Redis and builds the services and the HTTP server, which does not listen
// yet. Close it also when New fails: what was opened is released.
func New(ctx context.Context, cfg Config, opts ...Option) (*App, error) {
	a := &App{cfg: cfg}
	for _, o := range opts {
		o(&a.opts)
	}
	if a.opts.now == nil {
		a.opts.now = time.Now
	}
	a.log = a.opts.log
	if a.log == nil {
		a.log = slog.Default()
	}
	if err := cfg.Accounts.check(); err != nil {
		return a, err
	}
	// First, so that the storage and Redis report from their first call,
	// and the tracer, closed last, flushes every span.
	if err := a.startTelemetry(ctx); err != nil {
		return a, err
	}
	ownSQLite, err := a.openStorage(ctx)
	if err != nil {
		return a, err
	}
	inProcessRedis, err := a.openRedis(ctx)
	if err != nil {
		return a, err
	}
	a.Alone = ownSQLite && inProcessRedis
	a.ownRedis = inProcessRedis || (a.opts.redis != nil && a.opts.soleRedis)
	if err := a.build(ctx); err != nil {
		return a, err
	}
	return a, nil
}

// Replica builds another application on a's storage and Redis, with a's
// configuration and options and then opts, as another process sharing them
// would be: its own services, sequencer, caches and worker.
func (a *App) Replica(ctx context.Context, opts ...Option) (*App, error) {
	shared := []Option{func(o *options) { *o = a.opts; o.soleRedis = false }, WithStore(a.Store), WithRedis(a.Redis)}
	return New(ctx, a.cfg, append(shared, opts...)...)
}

// Close releases everything New opened, in reverse order: imports still
// running are marked interrupted while the database is open, then Redis and
// the storage close. Storage and Redis given by an option stay open. A nil
// App (a start that failed before New) closes nothing.
func (a *App) Close(ctx context.Context) {
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i](ctx)
	}
	a.closers = nil
	a.log.Info("fieldcrm stopped")
}

// check refuses a limit that would lock everyone out (or that
// ratelimit.Failures cannot keep): each must allow an attempt per a window.
func (l Accounts) check() error {
	for _, c := range []struct {
		name  string
		limit Limit
	}{{"LoginPerEmail", l.LoginPerEmail}, {"LoginPerAddress", l.LoginPerAddress},
		{"RefreshPerAddress", l.RefreshPerAddress}, {"SignupPerAddress", l.SignupPerAddress}} {
		if c.limit.Max < 1 || c.limit.Window <= 0 {
			return fmt.Errorf("app: accounts limit %s is %d per %s: want at least 1 per a positive window", c.name, c.limit.Max, c.limit.Window)
		}
	}
	return nil
}

// build makes the services on the open storage and Redis.
func (a *App) build(ctx context.Context) error {
	cfg, now, prefix := a.cfg, a.opts.now, a.cfg.Redis.Prefix
	signer, err := accounts.NewSigner(cfg.JWTSecret, now)
	if err != nil {
		return fmt.Errorf("JWT secret: %w", err)
	}
	sealer, err := crm.NewSealer(cfg.DataKey)
	if err != nil {
		return fmt.Errorf("data key: %w", err)
	}
	a.Devices = notify.NewDevices(a.Store, now)
	hashing := cfg.Accounts.Hashing
	if hashing == (accounts.HashLimit{}) {
		hashing = accounts.DefaultHashLimit(cfg.Accounts.Password)
	}
	a.log.Info("password hashing bounded", "concurrent", hashing.Concurrent, "queue", hashing.Queue, "memory_each_kib", cfg.Accounts.Password.MemoryKiB)
	limiter := func(name string, l Limit) *ratelimit.Failures {
		return ratelimit.NewFailures(a.Redis, prefix+name+":", l.Max, l.Window)
	}
	a.Accounts, err = accounts.New(accounts.Options{
		Store:          a.Store,
		Devices:        a.Devices,
		Limiter:        limiter("login-email", cfg.Accounts.LoginPerEmail),
		IPLimiter:      limiter("login-ip", cfg.Accounts.LoginPerAddress),
		SignupLimiter:  limiter("signup-ip", cfg.Accounts.SignupPerAddress),
		RefreshLimiter: limiter("refresh-ip", cfg.Accounts.RefreshPerAddress),
		Signer:         signer,
		Password:       cfg.Accounts.Password,
		Hashing:        hashing,
		Now:            now,
		Logger:         a.log,
	})
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	// The wall clock, whatever WithClock says: see WithClock.
	a.Sequencer = cursor.New(a.Redis, prefix+"sync:", cursor.DefaultLease, time.Now, a.Store)
	if a.redisWatch != nil {
		a.Sequencer.WatchServer(a.redisWatch)
	}
	if a.ownRedis {
		a.Sequencer.SoleProcess()
	}
	claim := cfg.ReminderClaim
	if claim <= 0 {
		claim = notify.DefaultClaim
	}
	a.Sequencer.ObserveLag(a.Telemetry.SyncLag)
	a.Schedule = notify.NewSchedule(a.Redis, prefix, claim, now)
	a.Scheduler = notify.NewScheduler(a.Store, a.Schedule, now)
	a.CRM, err = crm.New(crm.Options{
		Store: a.Store, Counters: counter.New(a.Redis, prefix+"counter:"), Sealer: sealer, Sequencer: a.Sequencer,
		Reminders: a.Scheduler, Now: now, Logger: a.log,
	})
	if err != nil {
		return err
	}
	// Closers run in reverse, so this runs before the database closes: the
	// imports still running here read interrupted, not failed or running.
	a.closers = append(a.closers, a.stopImports)
	pusher, err := a.pusher(ctx)
	if err != nil {
		return err
	}
	a.Worker = notify.NewWorker(a.Store, a.CRM, a.Devices, a.Scheduler, pusher, now, a.log)
	a.Worker.Alone = a.Alone
	a.Worker.Drain = cfg.ReminderDrain
	a.Worker.Metrics = a.Telemetry.Reminders
	a.Telemetry.Reminders.Expect(notify.ProviderOf(pusher), slices.Concat(models.TaskReminderKinds, models.TicketReminderKinds, []string{models.NotifyDigest}))
	a.Sync = watermelon.New(a.CRM, a.Sequencer, a.Store, cfg.SyncPageSize)
	checks := a.opts.checks
	if checks == nil {
		rdb := a.Redis
		checks = []api.Check{
			{Name: "mongodb", Ping: a.Store.Ping},
			{Name: "redis", Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		}
	}
	a.Imports = imports.New(a.CRM, a.log)
	if cfg.HTTP.Now == nil {
		cfg.HTTP.Now = now
	}
	a.Imports.Metrics = a.Telemetry.Imports
	a.Telemetry.Imports.Expect(crm.ImportKinds)
	a.Telemetry.Gauge("fieldcrm_password_hash_queue", "Callers waiting for a password-hashing slot (sign-ins, sign-ups, password changes); 429 beyond the queue's bound.",
		func() float64 { return float64(a.Accounts.PasswordHashesWaiting()) })
	a.Telemetry.Gauge("fieldcrm_password_hashes_running", "Password hashes running now (at most the hashing limit's concurrency).",
		func() float64 { return float64(a.Accounts.PasswordHashesRunning()) })
	httpCfg := cfg.HTTP
	httpCfg.Metrics, httpCfg.Tracer = a.Telemetry.Registry, a.Telemetry.Tracer
	a.Server, err = api.New(httpCfg, a.Accounts, a.CRM, a.Imports, a.Sync, notify.NewService(a.Devices, a.Store, a.CRM.Tasks), checks, a.log)
	if err != nil {
		return fmt.Errorf("HTTP server: %w", err)
	}
	if cfg.HTTP.SignupClosed {
		a.log.Info("sign-up is off: POST /v1/auth/signup answers 403")
	}
	return nil
}

// startTelemetry makes the application's registry, and its tracer when
// Config.Tracing names an endpoint; the tracer's spans are flushed when the
// application closes.
func (a *App) startTelemetry(ctx context.Context) error {
	tracer, shutdown, err := telemetry.StartTracing(ctx, a.cfg.Tracing, a.cfg.HTTP.Version)
	if err != nil {
		return err
	}
	if tracer != nil {
		a.log.Info("tracing: spans go to an OTLP/HTTP collector", "endpoint", a.cfg.Tracing.Endpoint)
		a.closers = append(a.closers, func(ctx context.Context) {
			if err := shutdown(ctx); err != nil {
				a.log.Warn("flush the last spans", "err", err.Error())
			}
		})
	}
	a.Telemetry = telemetry.New(tracer)
	return nil
}

// WatchReminderBacklog makes the metrics count the reminders due and not
// yet claimed, at each scrape: for the processes that run the reminder
// worker (the count is the same from every one of them, as they share the
// schedule).
func (a *App) WatchReminderBacklog() {
	a.Telemetry.Gauge("fieldcrm_reminders_backlog", "Reminders due and not yet claimed by a worker (the same count from every worker replica: take the max).", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := a.Schedule.Backlog(ctx)
		if err != nil {
			a.log.Warn("count the reminder backlog for the metrics", "err", err.Error())
			return math.NaN()
		}
		return float64(n)
	})
}

// stopImports marks the imports this process runs interrupted (see Close).
func (a *App) stopImports(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if n, err := a.CRM.StopImports(ctx); err != nil {
		a.log.Error("mark running imports interrupted", "err", err.Error())
	} else if n > 0 {
		a.log.Warn("running imports marked interrupted by the stop", "count", n)
	}
}

// pusher returns the FCM sender, or, without FCM settings, a stand-in that
// only logs: notifications then reach the inbox alone.
func (a *App) pusher(ctx context.Context) (notify.Pusher, error) {
	fcm := a.cfg.FCM
	if fcm.ProjectID == "" && fcm.CredentialsFile == "" {
		if fcm.Endpoint != "" {
			return nil, errors.New("FCM endpoint set without a project")
		}
		a.log.Warn("push: FCM is NOT configured (FCM_PROJECT_ID, FCM_CREDENTIALS_FILE); reminders go to the in-app inbox and the log only")
		return notify.LogPusher{Log: a.log}, nil
	}
	sender, err := notify.NewFCM(ctx, fcm)
	if err != nil {
		return nil, err
	}
	a.log.Info("push: FCM", "project", fcm.ProjectID, "endpoint_overridden", fcm.Endpoint != "")
	return sender, nil
}
