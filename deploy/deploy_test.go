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
	for _, m := range regexp.MustCompile(`"((?:FIELDCRM|FCM|MONGODB|REDIS|FERRETDB)_[A-Z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		keys[m[1]] = true
	}
	if !keys["MONGODB_URI"] || !keys["FIELDCRM_JWT_SECRET_FILE"] {
		t.Fatalf("settings read from config.go look wrong: %v", slices.Sorted(maps.Keys(keys)))
	}
	return keys
}

func TestComposeFile(t *testing.T) {
	// The secrets files are the operator's to create; make them for the load.
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
	for _, s := range []string{"jwt-secret", "data-key"} {
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

	// MongoDB: a three-member replica set, initiated by a one-shot service
	// that waits for all members.
	var members []string
	for name, svc := range project.Services {
		if svc.Image == "mongo:7" && slices.Contains(svc.Command, "--replSet") {
			members = append(members, name)
			if svc.HealthCheck == nil {
				t.Errorf("%s has no health check", name)
			}
		}
	}
	slices.Sort(members)
	if !slices.Equal(members, []string{"mongo1", "mongo2", "mongo3"}) {
		t.Fatalf("replica set members %v", members)
	}
	initSvc := project.Services["mongo-init"]
	script := strings.Join(initSvc.Command, " ")
	if initSvc.Restart != "no" || !strings.Contains(script, "rs.initiate") {
		t.Errorf("mongo-init is not a one-shot initiation: restart %q, command %q", initSvc.Restart, script)
	}
	for _, m := range members {
		if initSvc.DependsOn[m].Condition != types.ServiceConditionHealthy {
			t.Errorf("mongo-init does not wait for %s to be healthy", m)
		}
		if !strings.Contains(script, m+":27017") {
			t.Errorf("the replica set config lacks %s", m)
		}
	}

	// Two fieldcrm replicas from the Dockerfile, on the replica set and Redis.
	known := settings(t)
	var replicas []string
	for name, svc := range project.Services {
		if svc.Build == nil {
			continue
		}
		replicas = append(replicas, name)
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
		uri := *svc.Environment["MONGODB_URI"]
		for _, m := range members {
			if !strings.Contains(uri, m+":27017") {
				t.Errorf("%s's MONGODB_URI %q lacks %s", name, uri, m)
			}
		}
		if !strings.Contains(uri, "replicaSet=rs0") || *svc.Environment["REDIS_URL"] != "redis://redis:6379/0" {
			t.Errorf("%s: MONGODB_URI %q, REDIS_URL %q", name, uri, *svc.Environment["REDIS_URL"])
		}
		if svc.DependsOn["mongo-init"].Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s starts before the replica set is initiated", name)
		}
		if svc.HealthCheck == nil || !slices.Equal(svc.HealthCheck.Test, []string{"CMD", "/fieldcrm", "probe"}) {
			t.Errorf("%s health check %v", name, svc.HealthCheck)
		}
	}
	slices.Sort(replicas)
	if len(replicas) != 2 {
		t.Fatalf("fieldcrm replicas %v, want two", replicas)
	}

	// The proxy balances over exactly those replicas.
	proxy := project.Services["proxy"]
	conf, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	upstreams := regexp.MustCompile(`(?m)^\s*server\s+([a-z0-9-]+):8080`).FindAllStringSubmatch(string(conf), -1)
	var balanced []string
	for _, u := range upstreams {
		balanced = append(balanced, u[1])
	}
	slices.Sort(balanced)
	if !slices.Equal(balanced, replicas) {
		t.Errorf("nginx balances %v, the replicas are %v", balanced, replicas)
	}
	for _, r := range replicas {
		if proxy.DependsOn[r].Condition != types.ServiceConditionHealthy {
			t.Errorf("the proxy does not wait for %s", r)
		}
	}
	if len(proxy.Ports) != 1 || proxy.Ports[0].Target != 80 {
		t.Errorf("proxy ports %v", proxy.Ports)
	}
	if redis := project.Services["redis"]; !slices.Contains(redis.Command, "--appendonly") {
		t.Errorf("redis keeps nothing on disk: %v", redis.Command)
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
