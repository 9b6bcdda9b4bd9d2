package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/fieldcrm/fieldcrm/api"
	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/redis/lease"
	"github.com/fieldcrm/fieldcrm/notify"
)

func serveCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	log.Info("fieldcrm starting", "version", version, "addr", cfg.Addr, "data_dir", cfg.DataDir)
	a, err := startApp(ctx, cfg, log)
	defer a.Close(ctx)
	if err != nil {
		return err
	}
	if cfg.Role != roleAPI {
		jobs := jobRunner{leases: lease.New(a.Redis, cfg.RedisPrefix+"jobs:", processName()), log: log}
		go jobs.every(ctx, "pool-reclaim", cfg.PoolReclaimEvery, "pool reclaim: customers returned to the pool", a.CRM.ReclaimAll)
		go jobs.every(ctx, "tombstone-purge", time.Hour, "purged tombstones older than the retention", func(ctx context.Context) (int, error) {
			return a.Sync.Purge(ctx, time.Now().Add(-cfg.TombstoneRetention))
		})
		go jobs.every(ctx, "rfm-refresh", 24*time.Hour, "RFM value tiers refreshed", a.CRM.RefreshRFMAll)
		reconcile := func(ctx context.Context) (int, error) { return a.Scheduler.Reconcile(ctx, a.CRM) }
		// At start-up every replica reconciles, without a lease: it is what
		// rebuilds a schedule that Redis lost, and it is safe to run twice.
		if n, err := reconcile(ctx); err != nil {
			log.Error("rebuild the reminder schedule", "err", err.Error())
		} else {
			log.Info("reminder schedule rebuilt from MongoDB", "subjects", n)
		}
		go jobs.every(ctx, "reminder-reconcile", cfg.ReminderReconcileEvery, "reminder schedule reconciled with MongoDB", reconcile)
		go a.Worker.Run(ctx)
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
	if cfg.Role == roleWorker {
		log.Info("running as a worker only: reminders and background jobs, no HTTP")
		<-ctx.Done()
		return nil
	}
	log.Info("listening", "addr", cfg.Addr, "role", cfg.Role)
	if err := a.Server.Listen(ctx, cfg.Addr); err != nil {
		return fmt.Errorf("serve HTTP on %s: %w", cfg.Addr, err)
	}
	return nil
}

// jobRunner runs the background jobs of a worker process.
type jobRunner struct {
	leases *lease.Leases
	log    *slog.Logger
}

// every runs job once per period until ctx ends, logging what it did (done,
// the count it returns) and its failures. Every worker replica looks each
// minute (or each period, if shorter), but only the one that takes the job's
// lease runs it, and the lease lasts most of a period: the jobs are safe to
// run concurrently, yet N replicas scanning every tenant N times is waste.
// The lease lives in Redis, so restarts do not put a daily job off again and
// again, as a timer of each process's own would.
func (r jobRunner) every(ctx context.Context, name string, period time.Duration, done string, job func(context.Context) (int, error)) {
	tick := time.NewTicker(min(period, time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
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
		n, err := job(ctx)
		switch {
		case err != nil:
			r.log.ErrorContext(ctx, "background job failed", "job", name, "err", err.Error())
		case n > 0:
			r.log.InfoContext(ctx, done, "job", name, "count", n)
		}
	}
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
			SignupClosed: c.Signup == signupOff, ShutdownTimeout: c.ShutdownTimeout, Version: version},
		Accounts: app.Accounts{Password: password, Hashing: c.passwordHashing(password),
			LoginPerEmail: perEmail, LoginPerAddress: perAddress, RefreshPerAddress: perAddress,
			SignupPerAddress: app.Limit{Max: int64(c.SignupMaxPerAddress), Window: c.SignupWindow}},
		SyncPageSize: c.SyncPageSize,
		FCM:          notify.FCMConfig{ProjectID: c.FCMProjectID, CredentialsFile: c.FCMCredentialsFile, Endpoint: c.FCMEndpoint},
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
		SQLiteSynchronous: c.SQLiteSynchronous, DataDirLocked: c.dataDirLocked}
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
