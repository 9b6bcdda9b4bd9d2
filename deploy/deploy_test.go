// Package deploy_test checks the deployment files against the schemas of the
// tools that read them, since no container engine or cluster runs here: the
// compose file through compose-go (the Compose Specification's JSON schema and
// its model), the Kubernetes manifests decoded strictly into the API types of
// k8s.io/api (an unknown or misspelt field fails), and what ties them
// together: probes on the server's real endpoints, selectors that match, and
// settings that fieldcrm actually reads.
package deploy_test

import (
	"bytes"
	"context"
	"debug/elf"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// settings are the environment variables fieldcrm reads, taken from the
// code that reads them, so a misspelt key in a manifest fails here.
func settings(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("../cmd/fieldcrm/config.go")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, m := range regexp.MustCompile(`"((?:FIELDCRM|FCM|MONGODB|REDIS|FERRETDB|OTEL)_[A-Z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		keys[m[1]] = true
	}
	if !keys["MONGODB_URI"] || !keys["FIELDCRM_JWT_SECRET_FILE"] {
		t.Fatalf("settings read from config.go look wrong: %v", slices.Sorted(maps.Keys(keys)))
	}
	return keys
}

// loadCompose loads compose.yaml through compose-go, with the secret files
// the operator creates made up in a copy of this folder.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"compose.yaml", "nginx.conf"} {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"jwt-secret", "data-key", "mongo-root-password", "mongo-fieldcrm-password", "mongodb-uri", "redis-password", "redis-url"} {
		if err := os.WriteFile(filepath.Join(dir, "secrets", s), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")}, cli.WithWorkingDirectory(dir), cli.WithConsistency(true))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return project
}

func mountsSecret(svc types.ServiceConfig, name string) bool {
	return slices.ContainsFunc(svc.Secrets, func(s types.ServiceSecretConfig) bool { return s.Source == name })
}

func mountsVolume(svc types.ServiceConfig, source, target string) bool {
	return slices.ContainsFunc(svc.Volumes, func(v types.ServiceVolumeConfig) bool {
		return strings.HasSuffix(v.Source, source) && v.Target == target
	})
}

// TestComposeMongoDBAndRedisRequireAuthentication: the replica set's
// members authenticate each other with a keyfile made by a one-shot, the
// root user comes from a secret, Redis has a password from a secret and an
// append-only file.
func TestComposeMongoDBAndRedisRequireAuthentication(t *testing.T) {
	project := loadCompose(t)
	var members []string
	for name, svc := range project.Services {
		if slices.Contains(svc.Command, "--replSet") {
			members = append(members, name)
		}
	}
	slices.Sort(members)
	if !slices.Equal(members, []string{"mongo1", "mongo2", "mongo3"}) {
		t.Fatalf("replica set members %v", members)
	}
	keyfile := project.Services["mongo-keyfile"]
	script := strings.Join(keyfile.Command, " ")
	if keyfile.Restart != "no" || !strings.Contains(script, "chmod 0400 /keyfile/keyfile") || !strings.Contains(script, "chown 999:999 /keyfile/keyfile") ||
		!strings.Contains(script, "/dev/urandom") || !mountsVolume(keyfile, "mongo-keyfile", "/keyfile") {
		t.Errorf("mongo-keyfile must write a random keyfile once, mode 0400, owned by mongod's uid 999: %q", script)
	}
	for _, m := range members {
		svc := project.Services[m]
		i := slices.Index(svc.Command, "--keyFile")
		if i < 0 || i+1 >= len(svc.Command) || !strings.HasPrefix(svc.Command[i+1], "/keyfile/") || !mountsVolume(svc, "mongo-keyfile", "/keyfile") {
			t.Errorf("%s runs %v without the keyfile volume's keyfile", m, svc.Command)
		}
		if svc.DependsOn["mongo-keyfile"].Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s may start before its keyfile exists", m)
		}
		if svc.HealthCheck == nil {
			t.Errorf("%s has no health check", m)
		}
		if _, plain := svc.Environment["MONGO_INITDB_ROOT_PASSWORD"]; plain {
			t.Errorf("%s has the root password in its environment", m)
		}
	}
	first := project.Services["mongo1"]
	if pw := first.Environment["MONGO_INITDB_ROOT_PASSWORD_FILE"]; pw == nil || *pw != "/run/secrets/mongo_root_password" || !mountsSecret(first, "mongo_root_password") {
		t.Errorf("mongo1's root user is not from the mongo_root_password secret")
	}

	initSvc := project.Services["mongo-init"]
	script = strings.Join(initSvc.Command, " ") + " " + *initSvc.Environment["MONGO_INIT_SCRIPT"]
	if initSvc.Restart != "no" || !strings.Contains(script, "rs.initiate") || !strings.Contains(script, "/run/secrets/mongo_root_password") ||
		!strings.Contains(script, `createUser({user: "fieldcrm"`) || !mountsSecret(initSvc, "mongo_fieldcrm_password") {
		t.Errorf("mongo-init must initiate the set as root and create fieldcrm's user: %q", script)
	}
	for _, m := range members {
		if initSvc.DependsOn[m].Condition != types.ServiceConditionHealthy {
			t.Errorf("mongo-init does not wait for %s to be healthy", m)
		}
		if !strings.Contains(script, m+":27017") {
			t.Errorf("the replica set config lacks %s", m)
		}
	}

	redis := project.Services["redis"]
	cmd := strings.Join(redis.Command, " ")
	if !strings.Contains(cmd, "requirepass") || !strings.Contains(cmd, "/run/secrets/redis_password") || !mountsSecret(redis, "redis_password") {
		t.Errorf("redis has no password from the redis_password secret: %q", cmd)
	}
	if !strings.Contains(cmd, "--appendonly yes") || !strings.Contains(cmd, "--maxmemory-policy noeviction") {
		t.Errorf("redis: want AOF and noeviction: %q", cmd)
	}
	if redis.HealthCheck == nil || !strings.Contains(strings.Join(redis.HealthCheck.Test, " "), "REDISCLI_AUTH") {
		t.Errorf("redis health check does not authenticate: %v", redis.HealthCheck)
	}
}

// TestComposeFieldcrmServices: the migrations run once before the API
// replicas and the worker start; each role is where it should be; settings
// are ones fieldcrm reads; connection strings with passwords are secrets;
// the proxy balances over the API replicas only, with TLS.
func TestComposeFieldcrmServices(t *testing.T) {
	project := loadCompose(t)
	known := settings(t)
	roles := map[string][]string{}
	for name, svc := range project.Services {
		if svc.Build == nil {
			continue
		}
		if svc.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s builds %q", name, svc.Build.Dockerfile)
		}
		if _, err := os.Stat(filepath.Join("..", svc.Build.Dockerfile)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for key := range svc.Environment {
			if !known[key] {
				t.Errorf("%s sets %s, which fieldcrm does not read", name, key)
			}
		}
		for key, secret := range map[string]string{"MONGODB_URI_FILE": "mongodb_uri", "REDIS_URL_FILE": "redis_url", "FIELDCRM_JWT_SECRET_FILE": "jwt_secret", "FIELDCRM_DATA_KEY_FILE": "data_key"} {
			if v := svc.Environment[key]; v == nil || *v != "/run/secrets/"+secret || !mountsSecret(svc, secret) {
				t.Errorf("%s: %s is not the %s secret", name, key, secret)
			}
		}
		for _, plain := range []string{"MONGODB_URI", "REDIS_URL"} {
			if _, ok := svc.Environment[plain]; ok {
				t.Errorf("%s has %s in its environment: it carries a password", name, plain)
			}
		}
		if slices.Equal(svc.Command, []string{"migrate"}) {
			roles["migrate"] = append(roles["migrate"], name)
			continue
		}
		role := ""
		if r := svc.Environment["FIELDCRM_ROLE"]; r != nil {
			role = *r
		}
		roles[role] = append(roles[role], name)
		if svc.DependsOn["migrate"].Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s starts before the migrations have run", name)
		}
		if m := svc.Environment["FIELDCRM_MIGRATE"]; m == nil || *m != "skip" {
			t.Errorf("%s migrates at start-up too", name)
		}
		if svc.HealthCheck == nil || !slices.Equal(svc.HealthCheck.Test, []string{"CMD", "/fieldcrm", "probe"}) {
			t.Errorf("%s health check %v", name, svc.HealthCheck)
		}
		if len(svc.Ports) > 0 {
			t.Errorf("%s publishes ports %v: only the proxy does", name, svc.Ports)
		}
	}
	for r := range roles {
		slices.Sort(roles[r])
	}
	if len(roles["migrate"]) != 1 || len(roles["api"]) != 2 || len(roles["worker"]) != 1 || len(roles) != 3 {
		t.Fatalf("fieldcrm services by role %v: want one migrate, two api and one worker", roles)
	}
	migrate := project.Services[roles["migrate"][0]]
	if migrate.Restart != "no" || migrate.DependsOn["mongo-init"].Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("migrate must run once, after the replica set is initiated: restart %q, depends on %v", migrate.Restart, migrate.DependsOn)
	}

	// The proxy balances over exactly the API replicas, with TLS.
	proxy := project.Services["proxy"]
	conf, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	var balanced []string
	for _, u := range regexp.MustCompile(`(?m)^\s*server\s+([a-z0-9-]+):8080`).FindAllStringSubmatch(string(conf), -1) {
		balanced = append(balanced, u[1])
	}
	slices.Sort(balanced)
	if !slices.Equal(balanced, roles["api"]) {
		t.Errorf("nginx balances %v, the API replicas are %v", balanced, roles["api"])
	}
	for _, r := range roles["api"] {
		if proxy.DependsOn[r].Condition != types.ServiceConditionHealthy {
			t.Errorf("the proxy does not wait for %s", r)
		}
	}
	var targets []uint32
	for _, p := range proxy.Ports {
		targets = append(targets, p.Target)
	}
	slices.Sort(targets)
	if !slices.Equal(targets, []uint32{80, 443}) {
		t.Errorf("proxy ports %v, want 80 (redirect) and 443", proxy.Ports)
	}
	if !mountsVolume(proxy, "nginx.conf", "/etc/nginx/conf.d/default.conf") || !mountsVolume(proxy, "tls", "/etc/nginx/tls") {
		t.Errorf("the proxy mounts %v: want nginx.conf and the certificate directory", proxy.Volumes)
	}
}

// TestComposeImagesArePinnedByDigest: every image not built here names its
// digest, so every start runs the same bits.
func TestComposeImagesArePinnedByDigest(t *testing.T) {
	project := loadCompose(t)
	pinned := regexp.MustCompile(`^[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$`)
	for name, svc := range project.Services {
		if svc.Build != nil {
			continue
		}
		if !pinned.MatchString(svc.Image) {
			t.Errorf("%s runs image %q: want name:tag@sha256:<64 hex>", name, svc.Image)
		}
	}
}

// TestComposeBacksUpEveryDay: a backup service dumps the replica set with
// its oplog on a schedule into a volume and deletes dumps older than
// BACKUP_KEEP_DAYS.
func TestComposeBacksUpEveryDay(t *testing.T) {
	project := loadCompose(t)
	backup, ok := project.Services["backup"]
	if !ok {
		t.Fatal("no backup service")
	}
	script := strings.Join(backup.Command, " ")
	for _, want := range []string{"mongodump", "--oplog", `--archive="/backups/`, "while true", `sleep "$BACKUP_EVERY_SECONDS"`,
		`-mtime "+$BACKUP_KEEP_DAYS"`, "-delete", "/run/secrets/mongo_root_password"} {
		if !strings.Contains(script, want) {
			t.Errorf("backup script lacks %q:\n%s", want, script)
		}
	}
	for _, key := range []string{"BACKUP_KEEP_DAYS", "BACKUP_EVERY_SECONDS"} {
		v := backup.Environment[key]
		if v == nil {
			t.Errorf("backup: %s unset", key)
			continue
		}
		if n, err := strconv.Atoi(*v); err != nil || n < 1 {
			t.Errorf("backup: %s=%q", key, *v)
		}
	}
	if backup.Restart != "unless-stopped" || !mountsSecret(backup, "mongo_root_password") || !mountsVolume(backup, "backups", "/backups") ||
		backup.DependsOn["mongo-init"].Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("backup service: restart %q, secrets %v, volumes %v, depends on %v", backup.Restart, backup.Secrets, backup.Volumes, backup.DependsOn)
	}
	if _, ok := project.Volumes["backups"]; !ok {
		t.Error("no backups volume")
	}
}

// TestDockerfileBuildsAStaticNonRootImage reads the Dockerfile's stages and
// runs its build command here: the binary must be statically linked, as the
// scratch base has no libc.
func TestDockerfileBuildsAStaticNonRootImage(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(raw), " ")
	var froms, users []string
	var build, health string
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			froms = append(froms, fields[1])
		case "USER":
			users = append(users, fields[1])
		case "HEALTHCHECK":
			health = line
		case "RUN":
			if strings.Contains(line, "go build") {
				build = line
			}
		}
	}
	if len(froms) < 2 || froms[len(froms)-1] != "scratch" {
		t.Fatalf("stages %v: want a build stage and a scratch image", froms)
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Fatalf("the image runs as %v", users)
	}
	// One health check for every role: probe finds the port from
	// FIELDCRM_ROLE, so it must not be given an address.
	if !strings.HasSuffix(health, `CMD ["/fieldcrm", "probe"]`) {
		t.Errorf("HEALTHCHECK %q: want CMD [\"/fieldcrm\", \"probe\"], which follows the container's role", health)
	}
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "./cmd/fieldcrm") {
		t.Fatalf("build command %q", build)
	}
	if testing.Short() {
		t.Skip("-short: not building the binary")
	}
	out := filepath.Join(t.TempDir(), "fieldcrm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "../cmd/fieldcrm")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-buildvcs=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build as the Dockerfile does: %v\n%s", err, stderr.String())
	}
	bin, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary needs a dynamic loader; scratch has none")
		}
	}
	if libs, _ := bin.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary links %v", libs)
	}
	version := exec.Command(out, "version")
	if got, err := version.CombinedOutput(); err != nil || !strings.HasPrefix(string(got), "fieldcrm ") {
		t.Fatalf("the built binary: %v %s", err, got)
	}
}
