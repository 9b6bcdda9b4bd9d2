package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/fieldcrm/fieldcrm/api"
	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/redis/lease"
	"github.com/fieldcrm/fieldcrm/internal/telemetry"
	"github.com/fieldcrm/fieldcrm/notify"
)

func serveCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	log.Info("fieldcrm starting", "version", version, "addr", cfg.Addr, "data_dir", cfg.DataDir)
	// Before anything sizes itself by the limit (the password hashing gate).
	if limit := softMemoryLimit(getenv, readSystemFile); limit > 0 {
		debug.SetMemoryLimit(limit)
		log.Info("Go heap soft limit set from the container's memory limit", "GOMEMLIMIT_bytes", limit)
	}
	a, err := startApp(ctx, cfg, log)
	defer a.Close(ctx)
	if err != nil {
		return err
	}
	// Before the long steps of start-up (settling, the reminder schedule's
	// rebuild), so a worker's probes are answered while it starts.
	if cfg.MetricsAddr != metricsOff {
		stopMetrics, err := serveMetrics(ctx, cfg.MetricsAddr, a.Server.SystemHandler(), log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	// Before the first request, in every role (a process of any role may
	// have been killed mid-write): the customers a stopped process left
	// holding loyalty entries are settled, so every balance is its ledger's
	// sum again. Alone on its database, this process's start is after every
	// write that could still hold anything (see crm.Service.SettleHolds).
	var deadBefore time.Time
	if a.Alone {
		deadBefore = time.Now()
	}
	if n, err := a.CRM.SettleHolds(ctx, deadBefore); err != nil {
		log.Error("settle the loyalty balances a stopped process left", "err", err.Error())
	} else if n > 0 {
		log.Warn("customers a stopped process left holding loyalty entries settled", "count", n)
	}
	// What runs beside the HTTP server is waited for before a.Close (this
	// defer runs first), so none of it meets a closed store or Redis.
	var background sync.WaitGroup
	defer background.Wait()
	// Ended on every return, so the background stops also when serve
	// fails rather than being told to stop.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var jobs jobRunner
	if cfg.Role != roleAPI {
		a.WatchReminderBacklog()
		jobs = newJobRunner(a, cfg, log)
		go jobs.every(ctx, "pool-reclaim", cfg.PoolReclaimEvery, "pool reclaim: customers returned to the pool", a.CRM.ReclaimAll)
		go jobs.every(ctx, "tombstone-purge", time.Hour, "purged tombstones older than the retention", func(ctx context.Context) (int, error) {
			return a.Sync.Purge(ctx, time.Now().Add(-cfg.TombstoneRetention))
		})
		go jobs.every(ctx, "rfm-refresh", 24*time.Hour, "RFM value tiers refreshed", a.CRM.RefreshRFMAll)
		// For API replicas killed mid-write that do not come back.
		go jobs.every(ctx, "loyalty-settle", 10*time.Minute, "customers holding loyalty entries settled", func(ctx context.Context) (int, error) {
			return a.CRM.SettleHolds(ctx, time.Time{})
		})
		go jobs.every(ctx, reconcileJob, cfg.ReminderReconcileEvery, "reminder schedule reconciled with MongoDB", reconcileReminders(a))
		// The pushes under way when the process is told to stop finish and
		// are recorded, within reminderDrain of the shutdown timeout, while
		// the store and Redis are still open. The worker claims nothing once
		// ctx ends.
		background.Go(func() { a.Worker.Run(ctx) })
		a.Server.WatchLoop("reminder-worker", a.Worker.LastTurn, workerStuckAfter)
	}
	if cfg.Role != roleWorker {
		// Imports run in the API processes. Those a stopped process left
		// running read interrupted (the same file imported again resumes
		// them: rows imported already are skipped). Embedded storage with
		// in-process Redis is one process by construction, so every running
		// import is dead; otherwise only those whose heartbeat stopped.
		if n, err := a.CRM.InterruptDeadImports(ctx, !a.Alone); err != nil {
			log.Error("mark the imports of stopped processes interrupted", "err", err.Error())
		} else if n > 0 {
			log.Warn("imports left running by a stopped process marked interrupted", "count", n)
		}
	}
	// After listening, so the probes answer while it runs: a scan of every
	// open task takes time linear in them, and readiness need not wait for
	// it (the schedule in Redis usually survived; if it did not, the
	// reminders it rebuilds go out late by the scan's time). Unless another
	// replica ran it this period (see atStart): a scale-out does not rescan
	// everything.
	reconcileAtStart := func() {
		background.Go(func() {
			jobs.atStart(ctx, reconcileJob, cfg.ReminderReconcileEvery, "reminder schedule rebuilt from MongoDB", reconcileReminders(a))
		})
	}
	if cfg.Role == roleWorker {
		// Its health and metrics are on the metrics port: no API port.
		log.Info("running as a worker only: reminders and background jobs; /healthz, /readyz and /metrics on the metrics port", "metrics_addr", cfg.MetricsAddr)
		reconcileAtStart()
		a.Server.MarkStarted()
		<-ctx.Done()
		a.Server.MarkStopping()
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("serve HTTP: listen on %s: %w", cfg.Addr, err)
	}
	log.Info("listening", "addr", cfg.Addr, "role", cfg.Role)
	if cfg.Role != roleAPI {
		reconcileAtStart()
	}
	if err := a.Server.Serve(ctx, ln); err != nil {
		return fmt.Errorf("serve HTTP on %s: %w", cfg.Addr, err)
	}
	return nil
}

// workerStuckAfter is how long the reminder worker's loop may go without a
// turn before /healthz fails and the process is restarted: far longer than
// a push or a database call takes even while a dependency fails over (those
// fail within seconds and free their slot), so only a loop whose sends all
// hang trips it.
const workerStuckAfter = 3 * time.Minute

// reconcileJob names the reminder reconciliation's lease: the run at
// start-up and the periodic runs share it, so one run per period in all.
const reconcileJob = "reminder-reconcile"

// reconcileReminders checks the reminder schedule in Redis against the
// tasks in the database, rebuilding what Redis lost.
func reconcileReminders(a *app.App) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) { return a.Scheduler.Reconcile(ctx, a.CRM) }
}

// newJobRunner is the runner of a's background jobs, with leases in a's
// Redis.
func newJobRunner(a *app.App, cfg serveConfig, log *slog.Logger) jobRunner {
	return jobRunner{leases: lease.New(a.Redis, cfg.RedisPrefix+"jobs:", processName()), log: log, metrics: a.Telemetry.Jobs}
}

// serveMetrics serves handler (metrics and probes) on addr until stop is
// called: after the API has drained, so the last scrape sees the end.
func serveMetrics(ctx context.Context, addr string, handler http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve metrics on %s (FIELDCRM_METRICS_ADDR): %w", addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context {
		return context.WithoutCancel(ctx)
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err.Error())
		}
	}()
	log.Info("serving metrics and probes", "addr", ln.Addr().String())
	return func() {
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
		<-done
	}, nil
}

// jobObserver hears how each run of a job went (telemetry.Jobs).
type jobObserver interface {
	Scheduled(job string, period time.Duration)
	Ran(job string, end time.Time, took time.Duration, err error)
}

// jobRunner runs the background jobs of a worker process.
type jobRunner struct {
	leases *lease.Leases
	log    *slog.Logger
	// metrics, when set, hears of every run.
	metrics jobObserver
	// ticker, when set, replaces the wall clock's ticker (tests drive the
	// runner tick by tick); it returns the ticks and a stop.
	ticker func(every time.Duration) (<-chan time.Time, func())
}

// ticks returns when every runs next: each minute, or each period if shorter.
func (r jobRunner) ticks(period time.Duration) (<-chan time.Time, func()) {
	every := min(period, time.Minute)
	if r.ticker != nil {
		return r.ticker(every)
	}
	t := time.NewTicker(every)
	return t.C, t.Stop
}

// every runs job once per period until ctx ends, logging what it did (done,
// the count it returns) and its failures. Every worker replica looks each
// minute (or each period, if shorter), but only the one that takes the job's
// lease runs it, and the lease lasts most of a period: the jobs are safe to
// run concurrently, yet N replicas scanning every tenant N times is waste.
// The lease lives in Redis, so restarts do not put a daily job off again and
// again, as a timer of each process's own would.
func (r jobRunner) every(ctx context.Context, name string, period time.Duration, done string, job func(context.Context) (int, error)) {
	if r.metrics != nil {
		r.metrics.Scheduled(name, period)
	}
	ticks, stop := r.ticks(period)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		mine, err := r.leases.Take(ctx, name, lease.PeriodTTL(period))
		if err != nil {
			r.log.ErrorContext(ctx, "background job not run", "job", name, "err", err.Error())
			continue
		}
		if !mine {
			r.log.DebugContext(ctx, "background job run by another replica this period", "job", name)
			continue
		}
		n, err := r.run(ctx, name, job)
		switch {
		case err != nil:
			r.log.ErrorContext(ctx, "background job failed", "job", name, "err", err.Error())
		case n > 0:
			r.log.InfoContext(ctx, done, "job", name, "count", n)
		}
	}
}

// atStart runs job now, as the start of its period, unless another replica
// holds the period's lease, and reports whether it ran. The lease lives in
// the Redis that holds what the job rebuilds (the reminder schedule), so a
// Redis that lost that lost the lease too and the first replica to start
// runs the job, while a scale-out of ten replicas does not run it ten
// times. (A failover that kept the lease but not the latest schedule is
// mended by the periodic run.) When Redis does not answer it runs the job
// anyway: the jobs are safe to run twice.
func (r jobRunner) atStart(ctx context.Context, name string, period time.Duration, done string, job func(context.Context) (int, error)) bool {
	mine, err := r.leases.Take(ctx, name, lease.PeriodTTL(period))
	if err == nil && !mine {
		r.log.InfoContext(ctx, "background job run by another replica this period: not run at start-up", "job", name)
		return false
	}
	n, err := r.run(ctx, name, job)
	if err != nil {
		r.log.ErrorContext(ctx, "background job failed at start-up", "job", name, "err", err.Error())
	} else {
		r.log.InfoContext(ctx, done, "job", name, "count", n)
	}
	return true
}

// reminderDrain is how long the pushes under way at SIGTERM may take to
// finish: three quarters of the shutdown timeout (FIELDCRM_SHUTDOWN_TIMEOUT),
// leaving the rest to record the last of them and close the store and
// Redis, so the process is done within the time it was given. A push still
// unanswered then is cancelled, its claim runs out, and it is sent again by
// whichever worker claims it next: sent twice, rather than lost.
func reminderDrain(shutdownTimeout time.Duration) time.Duration {
	return shutdownTimeout - shutdownTimeout/4
}

// run runs job once, telling the metrics how it went.
func (r jobRunner) run(ctx context.Context, name string, job func(context.Context) (int, error)) (int, error) {
	start := time.Now()
	n, err := job(ctx)
	if r.metrics != nil {
		end := time.Now()
		r.metrics.Ran(name, end, end.Sub(start), err)
	}
	return n, err
}

// processName tells replicas apart in job leases: host name and process id.
func processName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// startApp builds the application from serve's configuration: secrets
// first, so that a missing or example secret stops start-up before anything
// is opened or connected to. Close the application even when it fails: it
// may be half open.
func startApp(ctx context.Context, cfg serveConfig, log *slog.Logger, opts ...app.Option) (*app.App, error) {
	secret, source, key, keySource, err := cfg.secrets()
	if err != nil {
		return nil, err
	}
	log.Info("JWT signing secret loaded", "source", source)
	log.Info("data key loaded", "source", keySource)
	return app.New(ctx, cfg.appConfig(secret, key), append([]app.Option{app.WithLogger(log)}, opts...)...)
}

// appConfig is the application's configuration from serve's, with the secrets.
func (c serveConfig) appConfig(jwtSecret, dataKey []byte) app.Config {
	password := accounts.PasswordParams{MemoryKiB: uint32(c.PasswordMemoryKiB), Time: uint32(c.PasswordTime), Threads: 1}
	perEmail := app.Limit{Max: int64(c.LoginMaxFailures), Window: c.LoginFailureWindow}
	perAddress := app.Limit{Max: perEmail.Max * ipFailureFactor, Window: c.LoginFailureWindow}
	return app.Config{
		Storage:   c.storage(),
		Redis:     app.Redis{URL: c.RedisURL, Prefix: c.RedisPrefix},
		JWTSecret: jwtSecret,
		DataKey:   dataKey,
		HTTP: api.Config{BodyLimit: c.BodyLimit, ImportBodyLimit: c.ImportBodyLimit, TrustedProxies: c.trustedProxies(),
			CORSOrigins: c.corsOrigins(), SignupClosed: c.Signup == signupOff, ShutdownTimeout: c.ShutdownTimeout, DependencyGrace: c.ReadyDependencyGrace,
			Version: version},
		Accounts: app.Accounts{Password: password, Hashing: c.passwordHashing(password),
			LoginPerEmail: perEmail, LoginPerAddress: perAddress, RefreshPerAddress: perAddress,
			SignupPerAddress: app.Limit{Max: int64(c.SignupMaxPerAddress), Window: c.SignupWindow}},
		SyncPageSize:  c.SyncPageSize,
		ReminderDrain: reminderDrain(c.ShutdownTimeout),
		FCM:           notify.FCMConfig{ProjectID: c.FCMProjectID, CredentialsFile: c.FCMCredentialsFile, Endpoint: c.FCMEndpoint},
		Tracing:       telemetry.TracingConfig{Endpoint: c.OTLPEndpoint},
	}
}

// startCommandApp opens what a one-shot command (import, export, seed)
// needs, configured as serve is, logging only warnings unless
// FIELDCRM_LOG_LEVEL says otherwise (the server's start-up chatter is noise
// there). Close the application even when it fails: it may be half open.
func startCommandApp(ctx context.Context, getenv func(string) string, stderr io.Writer) (*app.App, error) {
	cfg, err := commandConfig(getenv, stderr)
	if err != nil {
		return nil, err
	}
	return startApp(ctx, cfg, newLogger(cfg, stderr))
}

// commandConfig is serve's configuration for a one-shot command, logging only
// warnings unless FIELDCRM_LOG_LEVEL says otherwise.
func commandConfig(getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	cfg, err := parseServeConfig(nil, getenv, stderr)
	if err != nil {
		return cfg, err
	}
	if getenv("FIELDCRM_LOG_LEVEL") == "" {
		cfg.LogLevel = "warn"
	}
	return cfg, nil
}

// storage is where serve's configuration puts the database.
func (c serveConfig) storage() app.Storage {
	return app.Storage{MongoURI: c.MongoURI, Database: c.MongoDatabase, DataDir: c.DataDir, PostgreSQLURL: c.FerretPostgreSQLURL,
		SQLiteSynchronous: c.SQLiteSynchronous, DataDirLocked: c.dataDirLocked, Migrate: c.Migrate}
}

// ipFailureFactor sets the per-address limit of failed sign-ins (and of
// refreshes with unknown tokens) to this many times the per-e-mail limit: a
// whole office behind one NAT address must not lock out.
const ipFailureFactor = 20

func newLogger(cfg serveConfig, out io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(out, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(out, opts)
	}
	return slog.New(api.LogHandler(h))
}
