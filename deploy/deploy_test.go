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
	"fmt"
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
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
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

// manifest is one decoded Kubernetes object.
type manifest struct {
	file string
	kind string
	obj  any
}

// loadManifests decodes every document of every YAML file in k8s/ strictly
// into its API type.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	types := map[string]func() any{
		"Namespace":               func() any { return &corev1.Namespace{} },
		"ConfigMap":               func() any { return &corev1.ConfigMap{} },
		"Secret":                  func() any { return &corev1.Secret{} },
		"Service":                 func() any { return &corev1.Service{} },
		"Deployment":              func() any { return &appsv1.Deployment{} },
		"HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
		"PodDisruptionBudget":     func() any { return &policyv1.PodDisruptionBudget{} },
	}
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []manifest
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			newObj, ok := types[head.Kind]
			if !ok {
				t.Fatalf("%s document %d: kind %q has no check here", f, i, head.Kind)
			}
			obj := newObj()
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s document %d (%s) does not match the Kubernetes API: %v", f, i, head.Kind, err)
			}
			out = append(out, manifest{file: f, kind: head.Kind, obj: obj})
		}
	}
	return out
}

func only[T any](t *testing.T, ms []manifest, kind string) []T {
	t.Helper()
	var out []T
	for _, m := range ms {
		if m.kind == kind {
			out = append(out, *(m.obj.(*T)))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s manifest", kind)
	}
	return out
}

func TestKubernetesManifests(t *testing.T) {
	ms := loadManifests(t)
	deploy := only[appsv1.Deployment](t, ms, "Deployment")[0]
	pod := deploy.Spec.Template
	sel, err := metav1.LabelSelectorAsSelector(deploy.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
		t.Fatalf("the Deployment's selector %v does not select its pods %v: %v", deploy.Spec.Selector, pod.Labels, err)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	// Probes on the endpoints the server has, on the port it listens on.
	port := c.Ports[0]
	listen := ""
	for _, e := range c.Env {
		if e.Name == "FIELDCRM_ADDR" {
			listen = e.Value
		}
	}
	if listen != fmt.Sprintf(":%d", port.ContainerPort) {
		t.Errorf("FIELDCRM_ADDR %q, container port %d", listen, port.ContainerPort)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no %s probe", name)
			continue
		}
		want := map[string]string{"readiness": "/readyz", "startup": "/readyz", "liveness": "/healthz"}[name]
		if p.HTTPGet.Path != want || p.HTTPGet.Port.String() != port.Name {
			t.Errorf("%s probe %s on %s, want %s on %s", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), want, port.Name)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %v", c.Resources)
	}
	ru := deploy.Spec.Strategy.RollingUpdate
	if deploy.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v: a rollout must keep every ready replica", deploy.Spec.Strategy)
	}
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || c.SecurityContext == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("pod must run as non-root on a read-only root")
	}
	if grace := *pod.Spec.TerminationGracePeriodSeconds; grace < 30 {
		t.Errorf("termination grace %ds is shorter than the drain (20 s) plus preStop", grace)
	}

	// Settings: every key of the ConfigMap and Secret is one fieldcrm reads,
	// and they reach the container.
	known := settings(t)
	for _, cm := range only[corev1.ConfigMap](t, ms, "ConfigMap") {
		for key := range cm.Data {
			if !known[key] {
				t.Errorf("ConfigMap %s sets %s, which fieldcrm does not read", cm.Name, key)
			}
		}
		if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool { return e.ConfigMapRef != nil && e.ConfigMapRef.Name == cm.Name }) {
			t.Errorf("ConfigMap %s is not used", cm.Name)
		}
	}
	secrets := map[string]corev1.Secret{}
	for _, s := range only[corev1.Secret](t, ms, "Secret") {
		secrets[s.Name] = s
	}
	for _, e := range c.EnvFrom {
		if e.SecretRef == nil {
			continue
		}
		s, ok := secrets[e.SecretRef.Name]
		if !ok {
			t.Fatalf("envFrom names Secret %s, which secret.example.yaml lacks", e.SecretRef.Name)
		}
		for key := range s.StringData {
			if !known[key] {
				t.Errorf("Secret %s sets %s, which fieldcrm does not read", s.Name, key)
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			if _, ok := secrets[v.Secret.SecretName]; !ok {
				t.Errorf("volume %s mounts Secret %s, which secret.example.yaml lacks", v.Name, v.Secret.SecretName)
			}
		}
	}

	// The Service, the autoscaler and the disruption budget all point at
	// these pods.
	for _, svc := range only[corev1.Service](t, ms, "Service") {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) || svc.Spec.Ports[0].TargetPort.String() != port.Name {
			t.Errorf("Service %s selects %v on %s", svc.Name, svc.Spec.Selector, svc.Spec.Ports[0].TargetPort.String())
		}
	}
	hpa := only[autoscalingv2.HorizontalPodAutoscaler](t, ms, "HorizontalPodAutoscaler")[0]
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != deploy.Name || *hpa.Spec.MinReplicas < 2 {
		t.Errorf("autoscaler targets %s/%s from %d replicas", ref.Kind, ref.Name, *hpa.Spec.MinReplicas)
	}
	pdb := only[policyv1.PodDisruptionBudget](t, ms, "PodDisruptionBudget")[0]
	pdbSel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !pdbSel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("disruption budget %+v does not cover the pods", pdb.Spec)
	}
	if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("disruption budget %+v: want maxUnavailable 1, one pod at a time however many run", pdb.Spec)
	}
	spread := map[string]bool{}
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if s, err := metav1.LabelSelectorAsSelector(c.LabelSelector); err == nil && s.Matches(labels.Set(pod.Labels)) {
			spread[c.TopologyKey] = true
		}
	}
	if !spread["topology.kubernetes.io/zone"] || !spread["kubernetes.io/hostname"] {
		t.Errorf("pods spread over %v, want zones and nodes", spread)
	}
	for _, m := range ms {
		if ns := m.obj.(metav1.ObjectMetaAccessor).GetObjectMeta().GetNamespace(); m.kind != "Namespace" && ns != "fieldcrm" {
			t.Errorf("%s %s is in namespace %q", m.file, m.kind, ns)
		}
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	raw, err := os.ReadFile("k8s/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Namespace  string   `json:"namespace"`
		Labels     []any    `json:"labels"`
		Resources  []string `json:"resources"`
	}
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("k8s/*.yaml")
	var want []string
	for _, f := range files {
		// The Secret is an example: the real one comes from the operator.
		if b := filepath.Base(f); b != "kustomization.yaml" && b != "secret.example.yaml" {
			want = append(want, b)
		}
	}
	got := slices.Sorted(slices.Values(k.Resources))
	if k.Kind != "Kustomization" || !slices.Equal(got, want) {
		t.Fatalf("kustomization resources %v, manifests %v", got, want)
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
	var build string
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
