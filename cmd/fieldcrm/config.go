package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/api"
	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/telemetry"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// serveConfig is everything `fieldcrm serve` needs, from the environment with
// flags on top. The README's configuration table lists the same settings.
type serveConfig struct {
	// Role is all (HTTP, reminder worker and background jobs), api (HTTP
	// only) or worker (the worker and jobs; HTTP for health and metrics only).
	Role string
	Addr string
	// MetricsAddr is where /metrics, /healthz and /readyz are served apart
	// from the API (metricsOff: nowhere).
	MetricsAddr         string
	OTLPEndpoint        string
	DataDir             string
	MongoURI            string
	MongoDatabase       string
	FerretPostgreSQLURL string
	SQLiteSynchronous   string
	RedisURL            string
	RedisPrefix         string
	JWTSecret           string
	JWTSecretFile       string
	DataKey             string
	DataKeyFile         string
	PoolReclaimEvery    time.Duration
	SyncPageSize        int
	FCMProjectID        string
	FCMCredentialsFile  string
	FCMEndpoint         string
	// ReminderReconcileEvery is how often the reminder schedule in Redis is
	// checked against the tasks in MongoDB (also done at start-up).
	ReminderReconcileEvery time.Duration
	TombstoneRetention     time.Duration
	BodyLimit              int
	ImportBodyLimit        int
	TrustedProxies         string
	// CORSOrigins is the comma-separated list of exact origins whose
	// browser apps may call the API; empty allows same-origin calls only.
	CORSOrigins        string
	ShutdownTimeout    time.Duration
	LogFormat          string
	LogLevel           string
	LoginMaxFailures   int
	LoginFailureWindow time.Duration
	PasswordMemoryKiB  int
	PasswordTime       int
	// PasswordConcurrency and PasswordQueue bound the password hashes run at
	// once and the callers waiting for one; 0 chooses them from the CPUs and
	// memory (accounts.DefaultHashLimit).
	PasswordConcurrency int
	PasswordQueue       int
	// Signup is open (anyone may create a tenant over HTTP) or off.
	Signup              string
	SignupMaxPerAddress int
	SignupWindow        time.Duration
	// ReadyDependencyGrace is how long MongoDB or Redis may fail before
	// /readyz makes this process unready; 0 (FIELDCRM_READY_DEPENDENCY_GRACE
	// =never, the default) never does: see api.Readiness.
	ReadyDependencyGrace time.Duration
	// Migrate is auto (serve runs the pending migrations at start) or skip
	// (`fieldcrm migrate` runs them; serve checks the schema and waits for
	// them on a shared database): FIELDCRM_MIGRATE, see app.MigrateSkip.
	Migrate string
	// dataDirLocked says this process holds the lock of DataDir already
	// (restore does, across its copy and the opening of the store).
	dataDirLocked bool
}

// Sign-up settings (FIELDCRM_SIGNUP).
const (
	signupOpen = "open"
	signupOff  = "off"
)

// jwtSecretName and dataKeyName are the files in the data dir that hold the
// generated JWT secret and data key (see secret).
const (
	jwtSecretName = "jwt-secret"
	dataKeyName   = "data-key"
)

// defaultAddr is where serve listens without FIELDCRM_ADDR.
const defaultAddr = ":8080"

// defaultMetricsAddr is where serve serves its metrics and probes without
// FIELDCRM_METRICS_ADDR; metricsOff turns that port off.
const (
	defaultMetricsAddr = ":9090"
	metricsOff         = "off"
)

// Process roles (--role).
const (
	roleAll    = "all"
	roleAPI    = "api"
	roleWorker = "worker"
)

func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var cfg serveConfig
	var errs []error
	envInt := func(key string, def int) int {
		raw := getenv(key)
		if raw == "" {
			return def
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a non-negative whole number", key, raw))
		}
		return n
	}
	envDuration := func(key string, def time.Duration) time.Duration {
		raw := getenv(key)
		if raw == "" {
			return def
		}
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a duration such as 30s or 15m", key, raw))
		}
		return d
	}

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: fieldcrm serve [flags]\n\nRuns the HTTP API. With no MONGODB_URI it starts FerretDB in-process (SQLite\nunder the data dir, or PostgreSQL with FERRETDB_POSTGRESQL_URL); with no\nREDIS_URL it starts an in-process Redis that keeps nothing across restarts.\n\nFlags (each defaults to the environment variable named):")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Role, "role", env("FIELDCRM_ROLE", roleAll), "all (HTTP, reminder worker, background jobs), api (HTTP only) or worker (reminders and jobs; HTTP serves only health and metrics) (FIELDCRM_ROLE)")
	fs.StringVar(&cfg.Addr, "addr", env("FIELDCRM_ADDR", defaultAddr), "listen address (FIELDCRM_ADDR)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", env("FIELDCRM_METRICS_ADDR", defaultMetricsAddr), "listen address of /metrics, /healthz and /readyz, apart from the API; off serves none (a worker needs it) (FIELDCRM_METRICS_ADDR)")
	fs.StringVar(&cfg.DataDir, "data-dir", env("FIELDCRM_DATA_DIR", "./data"), "directory for embedded data and, with the embedded SQLite database only, the generated JWT secret and data key (FIELDCRM_DATA_DIR)")
	fs.StringVar(&cfg.MongoURI, "mongodb-uri", env("MONGODB_URI", ""), "MongoDB connection string; empty runs embedded FerretDB (MONGODB_URI)")
	fs.StringVar(&cfg.MongoDatabase, "mongodb-database", env("MONGODB_DATABASE", "fieldcrm"), "database name (MONGODB_DATABASE)")
	fs.StringVar(&cfg.FerretPostgreSQLURL, "ferretdb-postgresql-url", env("FERRETDB_POSTGRESQL_URL", ""), "run embedded FerretDB on this PostgreSQL database instead of SQLite (FERRETDB_POSTGRESQL_URL)")
	fs.StringVar(&cfg.SQLiteSynchronous, "sqlite-synchronous", env("FIELDCRM_SQLITE_SYNCHRONOUS", "full"), "embedded SQLite: full syncs every commit to disk; normal survives a crash of fieldcrm but may lose the last commits on power loss (FIELDCRM_SQLITE_SYNCHRONOUS)")
	fs.StringVar(&cfg.RedisURL, "redis-url", env("REDIS_URL", ""), "Redis URL (redis://, rediss://, or redis+sentinel://); empty runs in-process Redis (REDIS_URL)")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", env("FIELDCRM_REDIS_PREFIX", "fieldcrm:"), "prefix of every Redis key (FIELDCRM_REDIS_PREFIX)")
	fs.StringVar(&cfg.JWTSecretFile, "jwt-secret-file", env("FIELDCRM_JWT_SECRET_FILE", ""), "file holding the JWT signing secret (FIELDCRM_JWT_SECRET_FILE)")
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", env("FIELDCRM_TRUSTED_PROXIES", ""), "comma-separated proxy IPs/CIDRs whose X-Forwarded-For is believed (FIELDCRM_TRUSTED_PROXIES)")
	fs.StringVar(&cfg.CORSOrigins, "cors-origins", env("FIELDCRM_CORS_ORIGINS", ""), "comma-separated origins (https://console.example.com) whose browser apps may call the API; empty: same-origin only (FIELDCRM_CORS_ORIGINS)")
	fs.StringVar(&cfg.LogFormat, "log-format", env("FIELDCRM_LOG_FORMAT", "json"), "json or text (FIELDCRM_LOG_FORMAT)")
	fs.StringVar(&cfg.LogLevel, "log-level", env("FIELDCRM_LOG_LEVEL", "info"), "debug, info, warn or error (FIELDCRM_LOG_LEVEL)")
	fs.StringVar(&cfg.Signup, "signup", env("FIELDCRM_SIGNUP", signupOpen), "open: anyone may create an organisation with POST /v1/auth/signup; off: that answers 403 (FIELDCRM_SIGNUP)")
	fs.StringVar(&cfg.Migrate, "migrate", env("FIELDCRM_MIGRATE", app.MigrateAuto), "auto: run the pending database migrations at start; skip: leave them to `fieldcrm migrate` and wait for them (FIELDCRM_MIGRATE)")
	fs.StringVar(&cfg.DataKeyFile, "data-key-file", env("FIELDCRM_DATA_KEY_FILE", ""), "file holding the key (64 hex digits) that encrypts national ID numbers (FIELDCRM_DATA_KEY_FILE)")
	cfg.JWTSecret = getenv("FIELDCRM_JWT_SECRET") // never a flag: it would show in ps
	cfg.DataKey = getenv("FIELDCRM_DATA_KEY")
	cfg.PoolReclaimEvery = envDuration("FIELDCRM_POOL_RECLAIM_EVERY", time.Hour)
	cfg.FCMProjectID = getenv("FCM_PROJECT_ID")
	cfg.FCMCredentialsFile = getenv("FCM_CREDENTIALS_FILE")
	cfg.FCMEndpoint = getenv("FCM_ENDPOINT")
	cfg.OTLPEndpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	cfg.ReminderReconcileEvery = envDuration("FIELDCRM_REMINDER_RECONCILE_EVERY", 10*time.Minute)
	cfg.SyncPageSize = envInt("FIELDCRM_SYNC_PAGE_SIZE", watermelon.DefaultPageSize)
	cfg.TombstoneRetention = envDuration("FIELDCRM_SYNC_TOMBSTONE_RETENTION", watermelon.DefaultTombstoneRetention)
	cfg.BodyLimit = envInt("FIELDCRM_BODY_LIMIT", api.DefaultBodyLimit)
	cfg.ImportBodyLimit = envInt("FIELDCRM_IMPORT_BODY_LIMIT", api.DefaultImportBodyLimit)
	cfg.ShutdownTimeout = envDuration("FIELDCRM_SHUTDOWN_TIMEOUT", 20*time.Second)
	if raw := env("FIELDCRM_READY_DEPENDENCY_GRACE", "never"); raw != "never" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("FIELDCRM_READY_DEPENDENCY_GRACE=%q: want never or a duration such as 30s or 2m", raw))
		}
		cfg.ReadyDependencyGrace = d
	}
	cfg.LoginMaxFailures = envInt("FIELDCRM_LOGIN_MAX_FAILURES", 5)
	cfg.LoginFailureWindow = envDuration("FIELDCRM_LOGIN_FAILURE_WINDOW", 15*time.Minute)
	cfg.PasswordMemoryKiB = envInt("FIELDCRM_PASSWORD_MEMORY_KIB", int(accounts.DefaultPasswordParams.MemoryKiB))
	cfg.PasswordTime = envInt("FIELDCRM_PASSWORD_TIME", int(accounts.DefaultPasswordParams.Time))
	cfg.PasswordConcurrency = envInt("FIELDCRM_PASSWORD_CONCURRENCY", 0)
	cfg.PasswordQueue = envInt("FIELDCRM_PASSWORD_QUEUE", 0)
	cfg.SignupMaxPerAddress = envInt("FIELDCRM_SIGNUP_MAX_PER_ADDRESS", 10)
	cfg.SignupWindow = envDuration("FIELDCRM_SIGNUP_WINDOW", time.Hour)
	fs.IntVar(&cfg.BodyLimit, "body-limit", cfg.BodyLimit, "largest request body in bytes (FIELDCRM_BODY_LIMIT)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight requests may finish on SIGTERM (FIELDCRM_SHUTDOWN_TIMEOUT)")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	// The connection strings may carry passwords: a container platform
	// gives them as files (compose secrets, Kubernetes Secret volumes).
	for _, conn := range []struct {
		value     *string
		key, file string
	}{{&cfg.MongoURI, "MONGODB_URI", "MONGODB_URI_FILE"}, {&cfg.RedisURL, "REDIS_URL", "REDIS_URL_FILE"}} {
		file := getenv(conn.file)
		if file == "" {
			continue
		}
		if *conn.value != "" {
			errs = append(errs, fmt.Errorf("%s and %s are both set: keep one", conn.key, conn.file))
			continue
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", conn.file, err))
			continue
		}
		*conn.value = strings.TrimSpace(string(raw))
	}
	switch cfg.LogFormat {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log format %q: want json or text", cfg.LogFormat))
	}
	switch cfg.Role {
	case roleAll, roleAPI, roleWorker:
	default:
		errs = append(errs, fmt.Errorf("role %q: want all, api or worker", cfg.Role))
	}
	if cfg.MetricsAddr == metricsOff && cfg.Role == roleWorker {
		errs = append(errs, errors.New("FIELDCRM_METRICS_ADDR=off with FIELDCRM_ROLE=worker: a worker serves its health checks there and nowhere else"))
	} else if _, _, err := net.SplitHostPort(cfg.MetricsAddr); err != nil && cfg.MetricsAddr != metricsOff {
		errs = append(errs, fmt.Errorf("FIELDCRM_METRICS_ADDR=%q: want host:port, :port or off", cfg.MetricsAddr))
	}
	if cfg.MetricsAddr == cfg.Addr && cfg.Role != roleWorker {
		errs = append(errs, fmt.Errorf("FIELDCRM_METRICS_ADDR and FIELDCRM_ADDR are both %s: the metrics need a port of their own", cfg.Addr))
	}
	if cfg.OTLPEndpoint != "" {
		if err := telemetry.CheckEndpoint(cfg.OTLPEndpoint); err != nil {
			errs = append(errs, err)
		}
	}
	switch cfg.Migrate {
	case app.MigrateAuto, app.MigrateSkip:
	default:
		errs = append(errs, fmt.Errorf("FIELDCRM_MIGRATE=%q: want auto or skip", cfg.Migrate))
	}
	for _, o := range cfg.corsOrigins() {
		if err := api.CheckOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("FIELDCRM_CORS_ORIGINS: %w", err))
		}
	}
	switch cfg.SQLiteSynchronous {
	case "full", "normal":
	default:
		errs = append(errs, fmt.Errorf("FIELDCRM_SQLITE_SYNCHRONOUS=%q: want full or normal", cfg.SQLiteSynchronous))
	}
	if cfg.FCMEndpoint != "" && cfg.FCMProjectID == "" {
		errs = append(errs, errors.New("FCM_ENDPOINT needs FCM_PROJECT_ID"))
	}
	switch cfg.Signup {
	case signupOpen, signupOff:
	default:
		errs = append(errs, fmt.Errorf("FIELDCRM_SIGNUP=%q: want open or off", cfg.Signup))
	}
	if cfg.SignupMaxPerAddress < 1 {
		errs = append(errs, errors.New("FIELDCRM_SIGNUP_MAX_PER_ADDRESS must be at least 1"))
	}
	for _, p := range cfg.trustedProxies() {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				errs = append(errs, fmt.Errorf("FIELDCRM_TRUSTED_PROXIES: %q is neither an address nor a CIDR", p))
			}
		}
	}
	// Read by softMemoryLimit before anything else; checked here so that a
	// wrong value stops start-up instead of being ignored.
	if raw := getenv("FIELDCRM_MEMORY_LIMIT"); raw != "" {
		if n, err := strconv.ParseInt(raw, 10, 64); err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("FIELDCRM_MEMORY_LIMIT=%q: want the container's memory limit in bytes", raw))
		}
	}
	if cfg.LoginMaxFailures < 1 {
		errs = append(errs, errors.New("FIELDCRM_LOGIN_MAX_FAILURES must be at least 1"))
	}
	if cfg.PasswordMemoryKiB < 8 || cfg.PasswordTime < 1 {
		errs = append(errs, errors.New("FIELDCRM_PASSWORD_MEMORY_KIB must be at least 8 and FIELDCRM_PASSWORD_TIME at least 1"))
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, usageError{err.Error()}
	}
	return cfg, nil
}

// passwordHashing is the bound on concurrent password hashes: the settings,
// or what accounts.DefaultHashLimit chooses for those left at 0.
func (c serveConfig) passwordHashing(p accounts.PasswordParams) accounts.HashLimit {
	l := accounts.DefaultHashLimit(p)
	if c.PasswordConcurrency > 0 {
		l.Concurrent = c.PasswordConcurrency
		l.Queue = 16 * c.PasswordConcurrency
	}
	if c.PasswordQueue > 0 {
		l.Queue = c.PasswordQueue
	}
	return l
}

func (c serveConfig) trustedProxies() []string {
	var out []string
	for _, p := range strings.Split(c.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// corsOrigins is the list in CORSOrigins.
func (c serveConfig) corsOrigins() []string {
	var out []string
	for _, o := range strings.Split(c.CORSOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// sharedDatabase names the setting that puts the database outside this
// process (MONGODB_URI, or FERRETDB_POSTGRESQL_URL: several replicas may share
// either), or "" for the embedded SQLite database, which lives in the data
// dir and serves one process. With a shared database every replica must be
// given the same JWT secret and data key: one generated here would sign
// tokens the other replicas refuse, and seal national ID numbers with a key
// that lives on this machine's disk only. REDIS_URL alone does not count: two
// processes on their own SQLite files are two separate installations.
func (c serveConfig) sharedDatabase() string { return c.storage().Shared() }

// secrets returns the JWT signing secret and the data key, checked: it is
// called before any connection is made, so a bad or missing secret stops
// start-up at once with a message naming the setting.
func (c serveConfig) secrets() (jwtSecret []byte, jwtSource string, dataKey []byte, keySource string, err error) {
	if jwtSecret, jwtSource, err = c.jwtSecret(); err != nil {
		return nil, "", nil, "", err
	}
	if len(jwtSecret) < accounts.MinSecretBytes {
		return nil, "", nil, "", fmt.Errorf("JWT secret from %s is %d bytes, need at least %d (generate one with: openssl rand -base64 48)",
			jwtSource, len(jwtSecret), accounts.MinSecretBytes)
	}
	if why := placeholder(jwtSecret); why != "" {
		return nil, "", nil, "", fmt.Errorf("JWT secret from %s looks like a placeholder: %s; set a random one (generate it with: openssl rand -base64 48), the same on every replica", jwtSource, why)
	}
	if dataKey, keySource, err = c.dataKey(); err != nil {
		return nil, "", nil, "", err
	}
	if why := placeholder(dataKey); why != "" {
		return nil, "", nil, "", fmt.Errorf("data key from %s looks like a placeholder: %s; set a random one (generate it with: openssl rand -hex 32), the same on every replica", keySource, why)
	}
	return jwtSecret, jwtSource, dataKey, keySource, nil
}

// jwtSecret returns the signing secret: FIELDCRM_JWT_SECRET, else the secret
// file, else (embedded database only) a secret generated on first start and
// kept in the data dir with mode 0600, so tokens survive restarts.
func (c serveConfig) jwtSecret() (secret []byte, source string, err error) {
	return c.secret("FIELDCRM_JWT_SECRET", c.JWTSecret, c.JWTSecretFile, jwtSecretName, "openssl rand -base64 48")
}

// dataKey returns the 32-byte AES key that encrypts sensitive customer fields:
// FIELDCRM_DATA_KEY (64 hex digits), else its file, else (embedded database
// only) one generated on first start in the data dir. Losing it makes those
// fields unreadable: back it up.
func (c serveConfig) dataKey() ([]byte, string, error) {
	hexKey, source, err := c.secret("FIELDCRM_DATA_KEY", c.DataKey, c.DataKeyFile, dataKeyName, "openssl rand -hex 32")
	if err != nil {
		return nil, "", err
	}
	key, err := hex.DecodeString(string(hexKey))
	if err != nil || len(key) != 32 {
		return nil, "", fmt.Errorf("data key from %s: want 64 hex digits (32 bytes; generate one with: openssl rand -hex 32)", source)
	}
	return key, source, nil
}

// placeholderSecrets are the example values of deploy/ (and
// their like): a secret that contains one was copied, not generated.
var placeholderSecrets = []string{"change-me", "changeme", "change_me", "replace-me", "replaceme", "placeholder", "example", "your-secret"}

// minDistinctSecretChars: a generated secret (64 hex digits, or base64 of 32
// or more random bytes) has 16 or more distinct characters but for a chance
// far below 1e-15; fewer than 8 means a typed pattern such as the all-zero
// example key or "5a" repeated.
const minDistinctSecretChars = 8

// placeholder reports why secret looks like an example value, or "".
func placeholder(secret []byte) string {
	lower := strings.ToLower(string(secret))
	for _, p := range placeholderSecrets {
		if strings.Contains(lower, p) {
			return fmt.Sprintf("it contains %q, as the examples do", p)
		}
	}
	distinct := map[byte]bool{}
	for _, b := range secret {
		distinct[b] = true
	}
	if len(distinct) < minDistinctSecretChars {
		return fmt.Sprintf("it uses only %d distinct characters (an example value such as all zeros?)", len(distinct))
	}
	return ""
}

// secret returns value (from the environment variable envName) when set, else
// the contents of file, else a random 32-byte hex secret generated on first
// start and kept as name in the data dir with mode 0600. With a shared
// database (see sharedDatabase) it generates nothing: the secret must be
// given. secrets checks what it returns.
func (c serveConfig) secret(envName, value, file, name, howTo string) (secret []byte, source string, err error) {
	if value != "" {
		return []byte(value), envName, nil
	}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, "", fmt.Errorf("read %s_FILE: %w", envName, err)
		}
		return []byte(strings.TrimSpace(string(raw))), envName + "_FILE " + file, nil
	}
	path := filepath.Join(c.DataDir, name)
	if shared := c.sharedDatabase(); shared != "" {
		hint := ""
		if _, err := os.Stat(path); err == nil {
			hint = fmt.Sprintf(" (an earlier start generated %s: to keep it, give that file to every replica as %s_FILE)", path, envName)
		}
		return nil, "", fmt.Errorf("%s (or %s_FILE) is not set: with %s set it must be given, the same on every replica, rather than generated on this machine's disk%s; generate one with: %s",
			envName, envName, shared, hint, howTo)
	}
	raw, err := os.ReadFile(path)
	if err == nil {
		return []byte(strings.TrimSpace(string(raw))), path, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("read %s file: %w", name, err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", fmt.Errorf("generate %s: %w", name, err)
	}
	generated := hex.EncodeToString(b[:])
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create data dir: %w", err)
	}
	// O_EXCL: if two processes race on first start, one writes and both read it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return c.secret(envName, value, file, name, howTo)
	}
	if err != nil {
		return nil, "", fmt.Errorf("write %s: %w", name, err)
	}
	defer f.Close()
	if _, err := f.WriteString(generated + "\n"); err != nil {
		return nil, "", fmt.Errorf("write %s: %w", name, err)
	}
	return []byte(generated), path + " (generated now)", nil
}
