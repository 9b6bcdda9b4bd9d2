package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/api"
	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/redis/counter"
	"github.com/fieldcrm/fieldcrm/internal/redis/lease"
	"github.com/fieldcrm/fieldcrm/internal/redis/ratelimit"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/notify"
	"github.com/fieldcrm/fieldcrm/sync/cursor"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

func serveCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	log.Info("fieldcrm starting", "version", version, "addr", cfg.Addr, "data_dir", cfg.DataDir)
	a, err := startApp(ctx, cfg, log)
	defer a.close(ctx)
	if err != nil {
		return err
	}
	if cfg.Role != roleAPI {
		jobs := jobRunner{leases: lease.New(a.redis, cfg.RedisPrefix+"jobs:", processName()), log: log}
		go jobs.every(ctx, "pool-reclaim", cfg.PoolReclaimEvery, "pool reclaim: customers returned to the pool", a.crm.ReclaimAll)
		go jobs.every(ctx, "tombstone-purge", time.Hour, "purged tombstones older than the retention", func(ctx context.Context) (int, error) {
			return a.sync.Purge(ctx, time.Now().Add(-cfg.TombstoneRetention))
		})
		go jobs.every(ctx, "rfm-refresh", 24*time.Hour, "RFM value tiers refreshed", a.crm.RefreshRFMAll)
		reconcile := func(ctx context.Context) (int, error) { return a.scheduler.Reconcile(ctx, a.crm) }
		// At start-up every replica reconciles, without a lease: it is what
		// rebuilds a schedule that Redis lost, and it is safe to run twice.
		if n, err := reconcile(ctx); err != nil {
			log.Error("rebuild the reminder schedule", "err", err.Error())
		} else {
			log.Info("reminder schedule rebuilt from MongoDB", "subjects", n)
		}
		go jobs.every(ctx, "reminder-reconcile", cfg.ReminderReconcileEvery, "reminder schedule reconciled with MongoDB", reconcile)
		go a.worker.Run(ctx)
	}
	if cfg.Role != roleWorker {
		// Imports run in the API processes. Those a stopped process left
		// running read interrupted (the same file imported again resumes
		// them: rows imported already are skipped). Embedded storage with
		// in-process Redis is one process by construction, so every running
		// import is dead; otherwise only those whose heartbeat stopped.
		replicas := cfg.MongoURI != "" || cfg.FerretPostgreSQLURL != "" || cfg.RedisURL != ""
		if n, err := a.crm.InterruptDeadImports(ctx, replicas); err != nil {
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
	if err := a.server.Listen(ctx, cfg.Addr); err != nil {
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

// application is everything serve runs, wired from the configuration.
type application struct {
	server   *api.Server
	accounts *accounts.Service
	store    *store.Store
	redis    redis.UniversalClient
	seq      *cursor.Sequencer
	crm      *crm.Service
	sync     *watermelon.Engine
	// scheduler and worker are reminders and push (package notify).
	scheduler *notify.Scheduler
	worker    *notify.Worker
	log       *slog.Logger
	// redisPrefix starts every Redis key of this application's.
	redisPrefix string
	closers     []func(context.Context)
}

// close releases everything startApp opened, in reverse order.
func (a *application) close(ctx context.Context) {
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i](closeCtx)
	}
	a.log.Info("fieldcrm stopped")
}

// startApp opens the storage, migrates it, and builds the services and the
// HTTP server. On error, what was opened is in the closers already.
func startApp(ctx context.Context, cfg serveConfig, log *slog.Logger) (*application, error) {
	a := &application{log: log, redisPrefix: cfg.RedisPrefix}
	// Secrets first: a missing or example secret must stop start-up before
	// anything is opened or connected to.
	secret, source, key, keySource, err := cfg.secrets()
	if err != nil {
		return a, err
	}
	st, closeStore, err := openStore(ctx, cfg, log)
	a.closers = append(a.closers, closeStore)
	if err != nil {
		return a, err
	}
	a.store = st

	rdb, closeRedis, err := openRedis(ctx, cfg, log)
	if err != nil {
		return a, err
	}
	a.redis = rdb
	a.closers = append(a.closers, closeRedis)

	log.Info("JWT signing secret loaded", "source", source)
	signer, err := accounts.NewSigner(secret, time.Now)
	if err != nil {
		return a, fmt.Errorf("JWT secret from %s: %w", source, err)
	}
	devices := notify.NewDevices(st, time.Now)
	password := accounts.PasswordParams{MemoryKiB: uint32(cfg.PasswordMemoryKiB), Time: uint32(cfg.PasswordTime), Threads: 1}
	hashing := cfg.passwordHashing(password)
	log.Info("password hashing bounded", "concurrent", hashing.Concurrent, "queue", hashing.Queue, "memory_each_kib", password.MemoryKiB)
	acc, err := accounts.New(accounts.Options{
		Store:          st,
		Devices:        devices,
		Limiter:        ratelimit.NewFailures(rdb, cfg.RedisPrefix+"login-email:", int64(cfg.LoginMaxFailures), cfg.LoginFailureWindow),
		IPLimiter:      ratelimit.NewFailures(rdb, cfg.RedisPrefix+"login-ip:", int64(cfg.LoginMaxFailures)*ipFailureFactor, cfg.LoginFailureWindow),
		SignupLimiter:  ratelimit.NewFailures(rdb, cfg.RedisPrefix+"signup-ip:", int64(cfg.SignupMaxPerAddress), cfg.SignupWindow),
		RefreshLimiter: ratelimit.NewFailures(rdb, cfg.RedisPrefix+"refresh-ip:", int64(cfg.LoginMaxFailures)*ipFailureFactor, cfg.LoginFailureWindow),
		Signer:         signer,
		Password:       password,
		Hashing:        hashing,
		Logger:         log,
	})
	if err != nil {
		return a, err
	}
	a.accounts = acc
	log.Info("data key loaded", "source", keySource)
	sealer, err := crm.NewSealer(key)
	if err != nil {
		return a, err
	}
	a.seq = cursor.New(rdb, cfg.RedisPrefix+"sync:", cursor.DefaultLease, time.Now, st)
	schedule := notify.NewSchedule(rdb, cfg.RedisPrefix, notify.DefaultClaim, time.Now)
	a.scheduler = notify.NewScheduler(st, schedule, time.Now)
	a.crm, err = crm.New(crm.Options{
		Store: st, Counters: counter.New(rdb, cfg.RedisPrefix+"counter:"), Sealer: sealer, Logger: log, Sequencer: a.seq,
		Reminders: a.scheduler,
	})
	if err != nil {
		return a, err
	}
	// Closers run in reverse, so this runs before the database closes: the
	// imports still running here read interrupted, not failed or running.
	a.closers = append(a.closers, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if n, err := a.crm.StopImports(ctx); err != nil {
			log.Error("mark running imports interrupted", "err", err.Error())
		} else if n > 0 {
			log.Warn("running imports marked interrupted by the stop", "count", n)
		}
	})
	pusher, err := openFCM(ctx, cfg, log)
	if err != nil {
		return a, err
	}
	a.worker = notify.NewWorker(st, a.crm, devices, a.scheduler, pusher, time.Now, log)
	// Embedded storage with in-process Redis is one process by construction.
	a.worker.Alone = cfg.MongoURI == "" && cfg.FerretPostgreSQLURL == "" && cfg.RedisURL == ""
	a.sync = watermelon.New(a.crm, a.seq, st, cfg.SyncPageSize)
	checks := []api.Check{
		{Name: "mongodb", Ping: st.Ping},
		{Name: "redis", Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
	}
	a.server, err = api.New(api.Config{
		BodyLimit: cfg.BodyLimit, ImportBodyLimit: cfg.ImportBodyLimit, TrustedProxies: cfg.trustedProxies(),
		SignupClosed: cfg.Signup == signupOff, ShutdownTimeout: cfg.ShutdownTimeout, Version: version,
	}, acc, a.crm, a.sync, notify.NewService(devices, st, a.crm.Tasks), checks, log)
	if err != nil {
		return a, err
	}
	if cfg.Signup == signupOff {
		log.Info("sign-up is off: POST /v1/auth/signup answers 403")
	}
	return a, nil
}

// startCommandApp opens what a one-shot command (import, export, seed)
// needs, configured as serve is, logging only warnings unless
// FIELDCRM_LOG_LEVEL says otherwise (the server's start-up chatter is noise
// there). Close the application even when it fails: it may be half open.
func startCommandApp(ctx context.Context, getenv func(string) string, stderr io.Writer) (*application, error) {
	cfg, err := commandConfig(getenv, stderr)
	if err != nil {
		return &application{}, err
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

// openFCM returns the FCM sender, or, without FCM settings, a stand-in that
// only logs: notifications then reach the inbox alone.
func openFCM(ctx context.Context, cfg serveConfig, log *slog.Logger) (notify.Pusher, error) {
	if cfg.FCMProjectID == "" && cfg.FCMCredentialsFile == "" {
		log.Warn("push: FCM is NOT configured (FCM_PROJECT_ID, FCM_CREDENTIALS_FILE); reminders go to the in-app inbox and the log only")
		return notify.LogPusher{Log: log}, nil
	}
	fcm, err := notify.NewFCM(ctx, notify.FCMConfig{ProjectID: cfg.FCMProjectID, CredentialsFile: cfg.FCMCredentialsFile, Endpoint: cfg.FCMEndpoint})
	if err != nil {
		return nil, err
	}
	log.Info("push: FCM", "project", cfg.FCMProjectID, "endpoint_overridden", cfg.FCMEndpoint != "")
	return fcm, nil
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

// openStore opens the database as serve does (see openMongo) and migrates
// it. On the embedded engine on PostgreSQL it holds the start-up lock of the
// replicas meanwhile. closeStore releases everything, also after an error.
func openStore(ctx context.Context, cfg serveConfig, log *slog.Logger) (st *store.Store, closeStore func(context.Context), err error) {
	var closers []func(context.Context)
	closeStore = func(ctx context.Context) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i](ctx)
		}
	}
	if cfg.MongoURI == "" && cfg.FerretPostgreSQLURL != "" {
		release, err := embedded.LockStartup(ctx, cfg.FerretPostgreSQLURL)
		if err != nil {
			return nil, closeStore, err
		}
		defer release()
	}
	storeCfg, closeMongo, err := openMongo(ctx, cfg, log)
	if err != nil {
		return nil, closeStore, err
	}
	closers = append(closers, closeMongo)
	st, err = store.Open(ctx, storeCfg)
	if err != nil {
		return nil, closeStore, err
	}
	closers = append(closers, func(ctx context.Context) { _ = st.Close(ctx) })
	status, err := st.Migrate(ctx)
	if err != nil {
		return nil, closeStore, err
	}
	log.Info("database schema ready", "version", status.Current, "applied_now", status.Applied)
	return st, closeStore, nil
}

// openMongo decides where MongoDB is: MONGODB_URI, or an embedded FerretDB on
// PostgreSQL or SQLite. It returns the store configuration and a closer.
func openMongo(ctx context.Context, cfg serveConfig, log *slog.Logger) (store.Config, func(context.Context), error) {
	sc := store.Config{URI: cfg.MongoURI, Database: cfg.MongoDatabase, Logger: log}
	if cfg.MongoURI != "" {
		log.Info("storage: MongoDB", "database", cfg.MongoDatabase)
		return sc, func(context.Context) {}, nil
	}
	release := func() {}
	if cfg.FerretPostgreSQLURL == "" && !cfg.dataDirLocked {
		// One process at a time on the SQLite files: two embedded FerretDBs
		// would each trust their own catalogue, and restore must know that no
		// server runs here. The lock ends with the process, however it ends.
		lock, err := embedded.LockDir(cfg.DataDir)
		if err != nil {
			return sc, nil, fmt.Errorf("embedded SQLite engine: %w", err)
		}
		release = lock.Release
	}
	ec := embedded.Config{SQLiteDir: sqliteDir(cfg.DataDir), SQLiteSynchronous: cfg.SQLiteSynchronous,
		PostgreSQLURL: cfg.FerretPostgreSQLURL, Logger: log}
	f, err := embedded.StartFerret(ctx, ec)
	if err != nil {
		release()
		return sc, nil, err
	}
	sc.URI = f.URI()
	sc.SQLiteDir = f.SQLiteDir()
	tables, err := f.Tables(cfg.MongoDatabase)
	if err != nil {
		_ = f.Close(ctx)
		release()
		return sc, nil, err
	}
	sc.Tables = tables
	if tables.ByID() {
		sc.ByID = tables
	}
	if cfg.FerretPostgreSQLURL != "" {
		log.Warn("storage: EMBEDDED FerretDB on PostgreSQL (set MONGODB_URI for MongoDB)", "database", cfg.MongoDatabase)
	} else {
		log.Warn("storage: EMBEDDED FerretDB on SQLite; fine for one small team, set MONGODB_URI for production", "dir", ec.SQLiteDir)
	}
	return sc, func(ctx context.Context) { _ = tables.Close(); _ = f.Close(ctx); release() }, nil
}

// sqliteDir is where the embedded FerretDB keeps its SQLite files in a data dir.
func sqliteDir(dataDir string) string { return filepath.Join(dataDir, "ferretdb") }

// openRedis connects to REDIS_URL, or starts an in-process Redis.
func openRedis(ctx context.Context, cfg serveConfig, log *slog.Logger) (redis.UniversalClient, func(context.Context), error) {
	if cfg.RedisURL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("start in-process Redis: %w", err)
		}
		log.Warn("redis: IN-PROCESS miniredis — it keeps NOTHING across restarts (login limits, schedules); set REDIS_URL for production")
		client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		return client, func(context.Context) { _ = client.Close(); mr.Close() }, nil
	}
	opts, err := redisOptions(cfg.RedisURL)
	if err != nil {
		return nil, nil, err
	}
	client := redis.NewUniversalClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = client.Close()
		return nil, nil, fmt.Errorf("ping Redis: %w", err)
	}
	log.Info("redis: connected", "addrs", opts.Addrs, "sentinel_master", opts.MasterName)
	return client, func(context.Context) { _ = client.Close() }, nil
}

// redisOptions turns REDIS_URL into UniversalClient options. A plain redis:// or
// rediss:// URL is one server; several comma-separated host:port after the
// scheme make a Cluster; redis+sentinel://host1,host2/master-name uses Sentinel.
func redisOptions(raw string) (*redis.UniversalOptions, error) {
	if rest, ok := strings.CutPrefix(raw, "redis+sentinel://"); ok {
		hosts, master, _ := strings.Cut(rest, "/")
		if hosts == "" || master == "" {
			return nil, errors.New("REDIS_URL: sentinel form is redis+sentinel://host:26379,host2:26379/master-name")
		}
		return &redis.UniversalOptions{Addrs: strings.Split(hosts, ","), MasterName: master}, nil
	}
	if scheme, rest, ok := strings.Cut(raw, "://"); ok && strings.Contains(strings.SplitN(rest, "/", 2)[0], ",") {
		hostPart := strings.SplitN(rest, "/", 2)[0]
		u := &redis.UniversalOptions{}
		if at := strings.LastIndex(hostPart, "@"); at >= 0 {
			user, pass, _ := strings.Cut(hostPart[:at], ":")
			u.Username, u.Password = user, pass
			hostPart = hostPart[at+1:]
		}
		u.Addrs = strings.Split(hostPart, ",")
		if scheme == "rediss" {
			return nil, errors.New("REDIS_URL: TLS Cluster URLs are not supported yet; use a single rediss:// endpoint")
		}
		return u, nil
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return &redis.UniversalOptions{
		Addrs: []string{opts.Addr}, Username: opts.Username, Password: opts.Password, DB: opts.DB, TLSConfig: opts.TLSConfig,
	}, nil
}
