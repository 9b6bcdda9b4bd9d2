package deploy_test

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/fieldcrm/fieldcrm/api"
)

// cluster is what `kubectl apply -k deploy/k8s` would create, decoded into
// the Kubernetes API types.
type cluster struct {
	namespaces  []corev1.Namespace
	configMaps  map[string]corev1.ConfigMap
	deployments map[string]appsv1.Deployment
	jobs        []batchv1.Job
	services    []corev1.Service
	hpas        []autoscalingv2.HorizontalPodAutoscaler
	pdbs        []policyv1.PodDisruptionBudget
	ingresses   []networkingv1.Ingress
	policies    []networkingv1.NetworkPolicy
	// secrets are from secret.example.yaml: the real ones are the operator's.
	secrets map[string]corev1.Secret
}

// renderKustomization renders dir with kustomize, as kubectl apply -k does,
// and decodes each object strictly into its API type, so a misspelt or
// misplaced field fails.
func renderKustomization(t *testing.T, dir string) cluster {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	c := cluster{configMaps: map[string]corev1.ConfigMap{}, deployments: map[string]appsv1.Deployment{}, secrets: map[string]corev1.Secret{}}
	for _, r := range resources.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		decode := func(into any) {
			if err := yaml.UnmarshalStrict(doc, into); err != nil {
				t.Fatalf("%s %s does not match the Kubernetes API: %v", r.GetKind(), r.GetName(), err)
			}
		}
		switch r.GetKind() {
		case "Namespace":
			var o corev1.Namespace
			decode(&o)
			c.namespaces = append(c.namespaces, o)
		case "ConfigMap":
			var o corev1.ConfigMap
			decode(&o)
			c.configMaps[o.Name] = o
		case "Deployment":
			var o appsv1.Deployment
			decode(&o)
			c.deployments[o.Name] = o
		case "Job":
			var o batchv1.Job
			decode(&o)
			c.jobs = append(c.jobs, o)
		case "Service":
			var o corev1.Service
			decode(&o)
			c.services = append(c.services, o)
		case "HorizontalPodAutoscaler":
			var o autoscalingv2.HorizontalPodAutoscaler
			decode(&o)
			c.hpas = append(c.hpas, o)
		case "PodDisruptionBudget":
			var o policyv1.PodDisruptionBudget
			decode(&o)
			c.pdbs = append(c.pdbs, o)
		case "Ingress":
			var o networkingv1.Ingress
			decode(&o)
			c.ingresses = append(c.ingresses, o)
		case "NetworkPolicy":
			var o networkingv1.NetworkPolicy
			decode(&o)
			c.policies = append(c.policies, o)
		default:
			t.Fatalf("kind %s (%s) has no check here", r.GetKind(), r.GetName())
		}
		if r.GetKind() != "Namespace" && r.GetNamespace() != "fieldcrm" {
			t.Errorf("%s %s is in namespace %q", r.GetKind(), r.GetName(), r.GetNamespace())
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		var s corev1.Secret
		if err := yaml.UnmarshalStrict([]byte(doc), &s); err != nil {
			t.Fatalf("secret.example.yaml: %v", err)
		}
		c.secrets[s.Name] = s
	}
	return c
}

// workload is a pod template with what the checks need to know of it.
type workload struct {
	name string
	pod  corev1.PodTemplateSpec
}

func (c cluster) workloads() []workload {
	var out []workload
	for _, name := range slices.Sorted(maps.Keys(c.deployments)) {
		out = append(out, workload{"Deployment " + name, c.deployments[name].Spec.Template})
	}
	for _, j := range c.jobs {
		out = append(out, workload{"Job " + j.Name, j.Spec.Template})
	}
	return out
}

// byRole returns the Deployment whose pods run FIELDCRM_ROLE=role.
func (c cluster) byRole(t *testing.T, role string) appsv1.Deployment {
	t.Helper()
	var found []appsv1.Deployment
	for _, d := range c.deployments {
		if envValue(d.Spec.Template.Spec.Containers[0], "FIELDCRM_ROLE") == role {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d Deployments run FIELDCRM_ROLE=%s, want one", len(found), role)
	}
	return found[0]
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

func selects(t *testing.T, sel *metav1.LabelSelector, pod corev1.PodTemplateSpec) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return !s.Empty() && s.Matches(labels.Set(pod.Labels))
}

// The generated ConfigMap: its name carries a hash of fieldcrm.env.
func (c cluster) settingsConfigMap(t *testing.T) corev1.ConfigMap {
	t.Helper()
	var found []corev1.ConfigMap
	for name, cm := range c.configMaps {
		if regexp.MustCompile(`^fieldcrm-[a-z0-9]{10}$`).MatchString(name) {
			found = append(found, cm)
		}
	}
	if len(found) != 1 {
		t.Fatalf("ConfigMaps %v: want one fieldcrm-<hash> generated from fieldcrm.env", slices.Collect(maps.Keys(c.configMaps)))
	}
	return found[0]
}

// TestKubernetesWorkloadsShareOneImageAndConfiguration checks what every
// pod (API, worker, migration) has in common: the image pinned by digest,
// the generated ConfigMap and the Secret, settings fieldcrm reads, the Go
// heap's limit from the container's, non-root on a read-only root.
func TestKubernetesWorkloadsShareOneImageAndConfiguration(t *testing.T) {
	c := renderKustomization(t, "k8s")
	known := settings(t)
	cm := c.settingsConfigMap(t)
	for key := range cm.Data {
		if !known[key] {
			t.Errorf("fieldcrm.env sets %s, which fieldcrm does not read", key)
		}
	}
	for _, s := range c.secrets {
		if s.Name != "fieldcrm" {
			continue
		}
		for key := range s.StringData {
			if !known[key] {
				t.Errorf("Secret %s sets %s, which fieldcrm does not read", s.Name, key)
			}
		}
	}
	digest := regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$`)
	images := map[string]bool{}
	workloads := c.workloads()
	if len(workloads) != 3 {
		t.Errorf("workloads %v: want the API, the worker and the migration Job", workloads)
	}
	for _, w := range workloads {
		spec := w.pod.Spec
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", w.name, len(spec.Containers))
		}
		ctr := spec.Containers[0]
		if !digest.MatchString(ctr.Image) {
			t.Errorf("%s runs image %q: want it pinned by digest (registry/name@sha256:<64 hex>)", w.name, ctr.Image)
		}
		images[ctr.Image] = true
		var fromConfig, fromSecret bool
		for _, e := range ctr.EnvFrom {
			fromConfig = fromConfig || e.ConfigMapRef != nil && e.ConfigMapRef.Name == cm.Name
			if e.SecretRef != nil {
				if _, ok := c.secrets[e.SecretRef.Name]; !ok {
					t.Errorf("%s reads Secret %s, which secret.example.yaml lacks", w.name, e.SecretRef.Name)
				}
				fromSecret = true
			}
		}
		if !fromConfig || !fromSecret {
			t.Errorf("%s does not read the generated ConfigMap %s and the Secret", w.name, cm.Name)
		}
		for _, e := range ctr.Env {
			if !known[e.Name] {
				t.Errorf("%s sets %s, which fieldcrm does not read", w.name, e.Name)
			}
		}
		for _, v := range spec.Volumes {
			if v.Secret != nil {
				if _, ok := c.secrets[v.Secret.SecretName]; !ok {
					t.Errorf("%s mounts Secret %s, which secret.example.yaml lacks", w.name, v.Secret.SecretName)
				}
			}
		}
		if ctr.Resources.Limits.Memory().IsZero() || ctr.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: resources %v", w.name, ctr.Resources)
		}
		sc := spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || ctr.SecurityContext == nil || !*ctr.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("%s must run as non-root on a read-only root", w.name)
		}
		if !strings.HasPrefix(w.name, "Deployment") {
			continue
		}
		// The Go heap's soft limit: serve makes GOMEMLIMIT 90 % of this.
		var memory *corev1.ResourceFieldSelector
		for _, e := range ctr.Env {
			if e.Name == "FIELDCRM_MEMORY_LIMIT" && e.ValueFrom != nil {
				memory = e.ValueFrom.ResourceFieldRef
			}
			if e.Name == "GOMEMLIMIT" {
				t.Errorf("%s sets GOMEMLIMIT: that gives the heap the whole limit and overrides serve's 90 %%", w.name)
			}
		}
		if memory == nil || memory.Resource != "limits.memory" || memory.ContainerName != ctr.Name {
			t.Errorf("%s: FIELDCRM_MEMORY_LIMIT %+v, want its container's limits.memory", w.name, memory)
		}
	}
	if len(images) != 1 {
		t.Errorf("the workloads run different images: %v", slices.Collect(maps.Keys(images)))
	}
}

func TestKubernetesAPIDeployment(t *testing.T) {
	c := renderKustomization(t, "k8s")
	d := c.byRole(t, "api")
	pod := d.Spec.Template
	if !selects(t, d.Spec.Selector, pod) {
		t.Fatalf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector, pod.Labels)
	}
	ctr := pod.Spec.Containers[0]
	httpPort := containerPort(t, ctr, "http")
	if listen := envValue(ctr, "FIELDCRM_ADDR"); listen != fmt.Sprintf(":%d", httpPort) {
		t.Errorf("FIELDCRM_ADDR %q, container port %d", listen, httpPort)
	}
	if p := containerPort(t, ctr, "metrics"); p != 9090 {
		t.Errorf("metrics port %d, want FIELDCRM_METRICS_ADDR's default 9090", p)
	}
	// The API's probes on its API port.
	for name, p := range map[string]*corev1.Probe{"readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe, "startup": ctr.StartupProbe} {
		want := map[string]string{"readiness": "/readyz", "startup": "/readyz", "liveness": "/healthz"}[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %+v, want %s on http", name, p, want)
		}
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v: a rollout must keep every ready replica", d.Spec.Strategy)
	}
	if grace := *pod.Spec.TerminationGracePeriodSeconds; grace < 30 {
		t.Errorf("termination grace %ds is shorter than the drain (20 s) plus preStop", grace)
	}
	// The Service and the autoscaler point at the API's pods only.
	for _, svc := range c.services {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			t.Errorf("Service %s selects %v, not the API's pods", svc.Name, svc.Spec.Selector)
		}
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(c.byRole(t, "worker").Spec.Template.Labels)) {
			t.Errorf("Service %s sends API traffic to the worker", svc.Name)
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.String() != "http" {
				t.Errorf("Service %s exposes port %s: only the API port goes through the Service (metrics are scraped from the pods)", svc.Name, p.TargetPort.String())
			}
		}
	}
	if len(c.hpas) != 1 {
		t.Fatalf("%d autoscalers, want one, for the API", len(c.hpas))
	}
	if ref := c.hpas[0].Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != d.Name || *c.hpas[0].Spec.MinReplicas < 2 {
		t.Errorf("autoscaler targets %s/%s from %d replicas", ref.Kind, ref.Name, *c.hpas[0].Spec.MinReplicas)
	}
}

func TestKubernetesWorkerDeployment(t *testing.T) {
	c := renderKustomization(t, "k8s")
	d := c.byRole(t, "worker")
	pod := d.Spec.Template
	if !selects(t, d.Spec.Selector, pod) || selects(t, d.Spec.Selector, c.byRole(t, "api").Spec.Template) {
		t.Fatalf("the worker's selector %v must select its pods only", d.Spec.Selector)
	}
	ctr := pod.Spec.Containers[0]
	// The worker has no API port: its probes ask the metrics port.
	if len(ctr.Ports) != 1 || containerPort(t, ctr, "metrics") != 9090 {
		t.Errorf("worker ports %+v, want the metrics port 9090 alone", ctr.Ports)
	}
	if envValue(ctr, "FIELDCRM_ADDR") != "" {
		t.Error("the worker sets FIELDCRM_ADDR: it serves no API")
	}
	for name, p := range map[string]*corev1.Probe{"readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe, "startup": ctr.StartupProbe} {
		want := map[string]string{"readiness": "/readyz", "startup": "/readyz", "liveness": "/healthz"}[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("worker %s probe %+v, want %s on metrics", name, p, want)
		}
	}
	if *d.Spec.Replicas < 2 {
		t.Errorf("%d worker replicas: one lost node would stop reminders", *d.Spec.Replicas)
	}
	if grace := *pod.Spec.TerminationGracePeriodSeconds; grace < 20 {
		t.Errorf("worker termination grace %ds: the pushes under way need time to finish", grace)
	}
	for _, h := range c.hpas {
		if h.Spec.ScaleTargetRef.Name == d.Name {
			t.Error("the worker has an autoscaler; its work is spread by leases, not by CPU")
		}
	}
}

// TestKubernetesMigrationJob: migrations run in a Job before the rollout,
// and the Deployments do not run them at start-up.
func TestKubernetesMigrationJob(t *testing.T) {
	c := renderKustomization(t, "k8s")
	if len(c.jobs) != 1 {
		t.Fatalf("%d Jobs, want the migration", len(c.jobs))
	}
	job := c.jobs[0]
	ctr := job.Spec.Template.Spec.Containers[0]
	if !slices.Equal(ctr.Args, []string{"migrate"}) {
		t.Errorf("the Job runs %v, want fieldcrm migrate", ctr.Args)
	}
	if rp := job.Spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
		t.Errorf("Job restart policy %s", rp)
	}
	if job.Spec.BackoffLimit == nil || job.Spec.ActiveDeadlineSeconds == nil {
		t.Error("the Job must give up: backoffLimit and activeDeadlineSeconds")
	}
	cm := c.settingsConfigMap(t)
	if cm.Data["FIELDCRM_MIGRATE"] != "skip" {
		t.Errorf("FIELDCRM_MIGRATE=%q: with the Job, the Deployments must not migrate at start-up", cm.Data["FIELDCRM_MIGRATE"])
	}
	// Applied first with -l fieldcrm/step=migrate: the Job and the
	// ConfigMap it reads, nothing else (the Deployments would roll before
	// the migration ends).
	step := labels.SelectorFromSet(labels.Set{"fieldcrm/step": "migrate"})
	if !step.Matches(labels.Set(job.Labels)) || !step.Matches(labels.Set(cm.Labels)) {
		t.Errorf("the Job %v and the ConfigMap %v must carry fieldcrm/step=migrate", job.Labels, cm.Labels)
	}
	for name, d := range c.deployments {
		if step.Matches(labels.Set(d.Labels)) {
			t.Errorf("Deployment %s is applied with the migration step", name)
		}
	}
	// The Job's pods get no traffic at all.
	if allowedIngress(t, c.policies, job.Spec.Template, "ingress-nginx", 8080) || allowedIngress(t, c.policies, job.Spec.Template, "monitoring", 9090) {
		t.Error("the migration's pods accept connections")
	}
}

// TestKubernetesDisruptionBudgetsAndSpread: each Deployment loses one pod at
// a time to voluntary disruptions and spreads over nodes and zones.
func TestKubernetesDisruptionBudgetsAndSpread(t *testing.T) {
	c := renderKustomization(t, "k8s")
	for name, d := range c.deployments {
		pod := d.Spec.Template
		var budgets []policyv1.PodDisruptionBudget
		for _, pdb := range c.pdbs {
			if selects(t, pdb.Spec.Selector, pod) {
				budgets = append(budgets, pdb)
			}
		}
		if len(budgets) != 1 {
			t.Errorf("Deployment %s is covered by %d disruption budgets, want one", name, len(budgets))
		} else if b := budgets[0].Spec; b.MinAvailable != nil || b.MaxUnavailable == nil || b.MaxUnavailable.IntValue() != 1 {
			t.Errorf("Deployment %s: budget %+v, want maxUnavailable 1, one pod at a time however many run", name, b)
		}
		spread := map[string]bool{}
		for _, tsc := range pod.Spec.TopologySpreadConstraints {
			if selects(t, tsc.LabelSelector, pod) && tsc.MaxSkew == 1 {
				spread[tsc.TopologyKey] = true
			}
		}
		if !spread["topology.kubernetes.io/zone"] || !spread["kubernetes.io/hostname"] {
			t.Errorf("Deployment %s spreads over %v, want zones and nodes", name, spread)
		}
	}
}

// TestKubernetesIngressMatchesTheAPI: TLS, the security headers, and each
// route group's body limit and timeouts against the API's own constants.
func TestKubernetesIngressMatchesTheAPI(t *testing.T) {
	c := renderKustomization(t, "k8s")
	type limits struct {
		body       int
		read, send time.Duration
		noRetry    bool
		unbuffered bool
		pathType   networkingv1.PathType
	}
	want := map[string]limits{
		"/":             {body: api.DefaultBodyLimit, read: api.WriteTimeout, send: api.ReadTimeout, pathType: networkingv1.PathTypePrefix},
		"/v1/sync/push": {body: api.DefaultBodyLimit, read: api.WriteTimeout, send: api.ReadTimeout, noRetry: true, pathType: networkingv1.PathTypeExact},
		"/v1/sync/pull": {body: api.DefaultBodyLimit, read: api.WriteTimeout, send: api.ReadTimeout, pathType: networkingv1.PathTypeExact},
		"/v1/imports":   {body: api.DefaultImportBodyLimit, read: api.WriteTimeout, send: api.ImportReadTimeout, noRetry: true, pathType: networkingv1.PathTypeExact},
		"/v1/exports":   {body: api.DefaultBodyLimit, read: api.WriteTimeout, send: api.ReadTimeout, unbuffered: true, pathType: networkingv1.PathTypePrefix},
	}
	const prefix = "nginx.ingress.kubernetes.io/"
	seen := map[string]bool{}
	for _, ing := range c.ingresses {
		a := ing.Annotations
		if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
			t.Errorf("Ingress %s: class %v, want nginx (ingress-nginx's annotations)", ing.Name, ing.Spec.IngressClassName)
		}
		if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName == "" || a[prefix+"force-ssl-redirect"] != "true" {
			t.Errorf("Ingress %s: TLS %+v, force-ssl-redirect %q", ing.Name, ing.Spec.TLS, a[prefix+"force-ssl-redirect"])
		}
		// The security headers, from a ConfigMap the controller reads.
		ns, name, _ := strings.Cut(a[prefix+"custom-headers"], "/")
		headers, ok := c.configMaps[name]
		if ns != "fieldcrm" || !ok {
			t.Errorf("Ingress %s: custom-headers %q names no ConfigMap of fieldcrm", ing.Name, a[prefix+"custom-headers"])
		}
		if age := regexp.MustCompile(`max-age=(\d+)`).FindStringSubmatch(headers.Data["Strict-Transport-Security"]); age == nil || mustAtoi(age[1]) < 365*24*3600 {
			t.Errorf("Ingress %s: Strict-Transport-Security %q", ing.Name, headers.Data["Strict-Transport-Security"])
		}
		if headers.Data["X-Content-Type-Options"] != "nosniff" || headers.Data["X-Frame-Options"] != "DENY" || headers.Data["Referrer-Policy"] == "" ||
			!strings.Contains(headers.Data["Content-Security-Policy"], "frame-ancestors 'none'") {
			t.Errorf("Ingress %s: security headers %v", ing.Name, headers.Data)
		}
		seconds := func(key string, def time.Duration) time.Duration {
			if v, ok := a[prefix+key]; ok {
				return time.Duration(mustAtoi(v)) * time.Second
			}
			return def // ingress-nginx's default
		}
		body := 1 << 20
		if v, ok := a[prefix+"proxy-body-size"]; ok {
			body = nginxSize(t, v)
		}
		for _, rule := range ing.Spec.Rules {
			if !slices.ContainsFunc(ing.Spec.TLS, func(tls networkingv1.IngressTLS) bool { return slices.Contains(tls.Hosts, rule.Host) }) {
				t.Errorf("Ingress %s: host %s has no certificate", ing.Name, rule.Host)
			}
			for _, p := range rule.HTTP.Paths {
				l, ok := want[p.Path]
				if !ok {
					t.Errorf("Ingress %s routes %s, which this test does not know", ing.Name, p.Path)
					continue
				}
				seen[p.Path] = true
				if *p.PathType != l.pathType {
					t.Errorf("%s: path type %s, want %s", p.Path, *p.PathType, l.pathType)
				}
				if svc := p.Backend.Service; svc == nil || svc.Name != "fieldcrm" || svc.Port.Name != "http" {
					t.Errorf("%s: backend %+v, want the Service fieldcrm on http", p.Path, p.Backend)
				}
				if body != l.body {
					t.Errorf("%s: proxy-body-size %d bytes, the API takes %d", p.Path, body, l.body)
				}
				if got := seconds("proxy-read-timeout", 60*time.Second); got < l.read {
					t.Errorf("%s: proxy-read-timeout %s, the API may take %s", p.Path, got, l.read)
				}
				if got := seconds("proxy-send-timeout", 60*time.Second); got < l.send {
					t.Errorf("%s: proxy-send-timeout %s, the API gives a client %s", p.Path, got, l.send)
				}
				if l.noRetry && a[prefix+"proxy-next-upstream"] != "off" {
					t.Errorf("%s may be replayed on another replica", p.Path)
				}
				if l.unbuffered && a[prefix+"proxy-buffering"] != "off" {
					t.Errorf("%s is buffered: a streamed export would reach the client at its end", p.Path)
				}
			}
		}
	}
	for path := range want {
		if !seen[path] {
			t.Errorf("no Ingress routes %s", path)
		}
	}
}

// allowedIngress evaluates the NetworkPolicies as a cluster enforcing them
// would: may a pod of namespace from connect to pod on port?
func allowedIngress(t *testing.T, policies []networkingv1.NetworkPolicy, pod corev1.PodTemplateSpec, from string, port int32) bool {
	t.Helper()
	isolated := false
	for _, p := range policies {
		if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !podSelected(t, p.Spec.PodSelector, pod) {
			continue
		}
		isolated = true
		for _, rule := range p.Spec.Ingress {
			if peersMatch(t, rule.From, from) && portsMatch(t, rule.Ports, pod, port, corev1.ProtocolTCP) {
				return true
			}
		}
	}
	return !isolated
}

// allowedEgress: may pod connect to port over protocol in namespace to
// ("" for an address outside the cluster)?
func allowedEgress(t *testing.T, policies []networkingv1.NetworkPolicy, pod corev1.PodTemplateSpec, to string, port int32, protocol corev1.Protocol) bool {
	t.Helper()
	isolated := false
	for _, p := range policies {
		if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || !podSelected(t, p.Spec.PodSelector, pod) {
			continue
		}
		isolated = true
		for _, rule := range p.Spec.Egress {
			if peersMatch(t, rule.To, to) && portsMatch(t, rule.Ports, pod, port, protocol) {
				return true
			}
		}
	}
	return !isolated
}

func podSelected(t *testing.T, sel metav1.LabelSelector, pod corev1.PodTemplateSpec) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(&sel)
	if err != nil {
		t.Fatal(err)
	}
	return s.Matches(labels.Set(pod.Labels))
}

// peersMatch: no peers match everyone; else a namespace selector on the
// namespace's name label (pods of that namespace), or an ipBlock (which
// this check counts as any address outside the cluster).
func peersMatch(t *testing.T, peers []networkingv1.NetworkPolicyPeer, namespace string) bool {
	t.Helper()
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		if peer.IPBlock != nil && namespace == "" {
			return true
		}
		if peer.NamespaceSelector != nil && namespace != "" {
			s, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
			if err != nil {
				t.Fatal(err)
			}
			if s.Matches(labels.Set{"kubernetes.io/metadata.name": namespace}) && peer.PodSelector == nil {
				return true
			}
		}
	}
	return false
}

func portsMatch(t *testing.T, ports []networkingv1.NetworkPolicyPort, pod corev1.PodTemplateSpec, port int32, protocol corev1.Protocol) bool {
	t.Helper()
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != protocol {
			continue
		}
		if p.Port == nil {
			return true
		}
		n := p.Port.IntValue()
		if p.Port.StrVal != "" {
			n = 0
			for _, c := range pod.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == p.Port.StrVal {
						n = int(cp.ContainerPort)
					}
				}
			}
		}
		if int32(n) == port {
			return true
		}
	}
	return false
}

// TestKubernetesNetworkPolicies: the API port from the ingress controller
// only, the metrics port from the monitoring namespace only, and out only
// to DNS, MongoDB, Redis and HTTPS.
func TestKubernetesNetworkPolicies(t *testing.T) {
	c := renderKustomization(t, "k8s")
	apiPod, worker := c.byRole(t, "api").Spec.Template, c.byRole(t, "worker").Spec.Template
	for _, tc := range []struct {
		pod  string
		from string
		port int32
		want bool
	}{
		{"api", "ingress-nginx", 8080, true},
		{"api", "ingress-nginx", 9090, false},
		{"api", "monitoring", 9090, true},
		{"api", "monitoring", 8080, false},
		{"api", "fieldcrm", 8080, false},
		{"api", "default", 8080, false},
		{"worker", "monitoring", 9090, true},
		{"worker", "ingress-nginx", 9090, false},
		{"worker", "ingress-nginx", 8080, false},
		{"worker", "default", 9090, false},
	} {
		pod := map[string]corev1.PodTemplateSpec{"api": apiPod, "worker": worker}[tc.pod]
		if got := allowedIngress(t, c.policies, pod, tc.from, tc.port); got != tc.want {
			t.Errorf("%s pod, from namespace %s to port %d: allowed %v, want %v", tc.pod, tc.from, tc.port, got, tc.want)
		}
	}
	pods := map[string]corev1.PodTemplateSpec{"api": apiPod, "worker": worker, "migrate": c.jobs[0].Spec.Template}
	for name, pod := range pods {
		for _, tc := range []struct {
			to       string
			port     int32
			protocol corev1.Protocol
			want     bool
		}{
			{"kube-system", 53, corev1.ProtocolUDP, true},
			{"kube-system", 53, corev1.ProtocolTCP, true},
			{"default", 53, corev1.ProtocolUDP, false},
			{"", 53, corev1.ProtocolUDP, false},
			{"fieldcrm-data", 27017, corev1.ProtocolTCP, true},
			{"", 27017, corev1.ProtocolTCP, true}, // Atlas
			{"fieldcrm-data", 6379, corev1.ProtocolTCP, true},
			{"", 443, corev1.ProtocolTCP, true}, // FCM
			{"", 80, corev1.ProtocolTCP, false},
			{"default", 5432, corev1.ProtocolTCP, false},
			{"kube-system", 443, corev1.ProtocolTCP, true},
			{"", 22, corev1.ProtocolTCP, false},
		} {
			if got := allowedEgress(t, c.policies, pod, tc.to, tc.port, tc.protocol); got != tc.want {
				t.Errorf("%s pod to %q port %d/%s: allowed %v, want %v", name, tc.to, tc.port, tc.protocol, got, tc.want)
			}
		}
	}

	// Trusted proxies: a narrow range, not all of 10.0.0.0/8.
	cm := c.settingsConfigMap(t)
	raw := cm.Data["FIELDCRM_TRUSTED_PROXIES"]
	if raw == "" {
		t.Fatal("FIELDCRM_TRUSTED_PROXIES is empty: every client would share the ingress controller's address in the sign-in limits")
	}
	for _, p := range strings.Split(raw, ",") {
		prefix, err := netip.ParsePrefix(strings.TrimSpace(p))
		if err != nil {
			addr, aerr := netip.ParseAddr(strings.TrimSpace(p))
			if aerr != nil {
				t.Fatalf("FIELDCRM_TRUSTED_PROXIES %q: %v", p, err)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		if prefix.Bits() < 16 {
			t.Errorf("FIELDCRM_TRUSTED_PROXIES trusts %s: wider than a /16", prefix)
		}
	}
}

// TestKubernetesConfigurationChangeRollsThePods renders a copy of k8s/ with
// one setting changed: the ConfigMap's name changes, and every workload
// refers to the new one, so kubectl apply rolls the pods.
func TestKubernetesConfigurationChangeRollsThePods(t *testing.T) {
	before := renderKustomization(t, "k8s")
	dir := t.TempDir()
	files, err := filepath.Glob("k8s/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "fieldcrm.env" {
			if !strings.Contains(string(raw), "\nFIELDCRM_LOG_LEVEL=info\n") {
				t.Fatal("fieldcrm.env no longer sets FIELDCRM_LOG_LEVEL=info: update this test")
			}
			raw = []byte(strings.Replace(string(raw), "\nFIELDCRM_LOG_LEVEL=info\n", "\nFIELDCRM_LOG_LEVEL=debug\n", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	after := renderKustomization(t, dir)
	oldName, newName := before.settingsConfigMap(t).Name, after.settingsConfigMap(t).Name
	if oldName == newName {
		t.Fatalf("the ConfigMap keeps its name %s after a change: the pods would not roll", oldName)
	}
	for _, w := range after.workloads() {
		if !slices.ContainsFunc(w.pod.Spec.Containers[0].EnvFrom, func(e corev1.EnvFromSource) bool {
			return e.ConfigMapRef != nil && e.ConfigMapRef.Name == newName
		}) {
			t.Errorf("%s still reads %s after the change", w.name, oldName)
		}
	}
}

// TestKustomizationListsEveryManifest: a manifest left out of the
// kustomization would never be applied.
func TestKustomizationListsEveryManifest(t *testing.T) {
	raw, err := os.ReadFile("k8s/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
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
	if got := slices.Sorted(slices.Values(k.Resources)); !slices.Equal(got, want) {
		t.Fatalf("kustomization resources %v, manifests %v", got, want)
	}
}
