package deploy_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/api"
)

// directive is one nginx directive: its name, its arguments and, for a
// block (server, location), the directives inside.
type directive struct {
	name  string
	args  []string
	block []directive
}

// parseNginx reads the subset of nginx's syntax the config uses: words,
// quoted strings, comments, ";" and "{ }" blocks.
func parseNginx(t *testing.T, src string) []directive {
	t.Helper()
	var tokens []string
	for i := 0; i < len(src); {
		switch c := src[i]; {
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == ';' || c == '{' || c == '}':
			tokens = append(tokens, string(c))
			i++
		case c == '"' || c == '\'':
			end := strings.IndexByte(src[i+1:], c)
			if end < 0 {
				t.Fatalf("unterminated string at %d", i)
			}
			tokens = append(tokens, src[i+1:i+1+end])
			i += end + 2
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n;{}#", rune(src[j])) {
				j++
			}
			tokens = append(tokens, src[i:j])
			i = j
		}
	}
	var parse func() []directive
	parse = func() []directive {
		var out []directive
		var cur []string
		for len(tokens) > 0 {
			tok := tokens[0]
			tokens = tokens[1:]
			switch tok {
			case ";":
				out = append(out, directive{name: cur[0], args: cur[1:]})
				cur = nil
			case "{":
				out = append(out, directive{name: cur[0], args: cur[1:], block: parse()})
				cur = nil
			case "}":
				return out
			default:
				cur = append(cur, tok)
			}
		}
		if cur != nil {
			t.Fatalf("directive %v has no ';'", cur)
		}
		return out
	}
	return parse()
}

// get returns the arguments of the named directive in ds, or nil.
func get(ds []directive, name string) []string {
	for _, d := range ds {
		if d.name == name {
			return d.args
		}
	}
	return nil
}

func all(ds []directive, name string) []directive {
	var out []directive
	for _, d := range ds {
		if d.name == name {
			out = append(out, d)
		}
	}
	return out
}

// nginxSize reads a size such as 8m or 128m, in bytes.
func nginxSize(t *testing.T, s string) int {
	t.Helper()
	unit := map[byte]int{'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}[strings.ToLower(s)[len(s)-1]]
	if unit == 0 {
		unit, s = 1, s+"x"
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil {
		t.Fatalf("size %q: %v", s, err)
	}
	return n * unit
}

func nginxDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

// nginxServers returns the plain HTTP and the TLS server blocks.
func nginxServers(t *testing.T) (plain, secure directive) {
	t.Helper()
	raw, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all(parseNginx(t, string(raw)), "server") {
		for _, l := range all(s.block, "listen") {
			switch {
			case slices.Contains(l.args, "ssl"):
				secure = s
			case l.args[0] == "80":
				plain = s
			}
		}
	}
	if plain.block == nil || secure.block == nil {
		t.Fatal("nginx.conf needs a server on 80 and one on 443 ssl")
	}
	return plain, secure
}

// TestNginxLimitsMatchTheAPI reads nginx.conf: each route group's body limit
// and timeouts must be the API's (a change to the Go constants fails here
// until the proxy follows), TLS on 443 with HTTP/2, HTTP only redirecting,
// the security headers, the forwarded headers the trusted-proxy logic reads,
// and no way to /metrics.
func TestNginxLimitsMatchTheAPI(t *testing.T) {
	plain, secure := nginxServers(t)

	for _, l := range all(secure.block, "listen") {
		if !slices.Contains(l.args, "ssl") || !slices.Contains(l.args, "http2") {
			t.Errorf("TLS server listens %v: want ssl and http2", l.args)
		}
	}
	for _, name := range []string{"ssl_certificate", "ssl_certificate_key"} {
		if a := get(secure.block, name); len(a) != 1 || !strings.HasPrefix(a[0], "/etc/nginx/tls/") {
			t.Errorf("%s %v: want a file under the mounted /etc/nginx/tls/", name, a)
		}
	}
	// Plain HTTP: a redirect to HTTPS, and the ACME challenge.
	for _, loc := range all(plain.block, "location") {
		switch {
		case loc.args[0] == "/.well-known/acme-challenge/":
		case slices.Equal(get(loc.block, "return"), []string{"301", "https://$host$request_uri"}):
		default:
			t.Errorf("port 80 serves location %v: it should only redirect", loc.args)
		}
		if get(loc.block, "proxy_pass") != nil {
			t.Errorf("port 80 forwards %v to the API in clear", loc.args)
		}
	}

	headers := map[string]string{}
	for _, h := range all(secure.block, "add_header") {
		if len(h.args) != 3 || h.args[2] != "always" {
			t.Errorf("add_header %v: want it on errors too (always)", h.args)
			continue
		}
		headers[h.args[0]] = h.args[1]
	}
	hsts := regexp.MustCompile(`max-age=(\d+)`).FindStringSubmatch(headers["Strict-Transport-Security"])
	if hsts == nil || mustAtoi(hsts[1]) < 365*24*3600 {
		t.Errorf("Strict-Transport-Security %q: want a year or more", headers["Strict-Transport-Security"])
	}
	if headers["X-Content-Type-Options"] != "nosniff" || headers["Referrer-Policy"] == "" || headers["X-Frame-Options"] != "DENY" ||
		!strings.Contains(headers["Content-Security-Policy"], "frame-ancestors 'none'") {
		t.Errorf("security headers %v", headers)
	}
	forwarded := map[string]string{}
	for _, h := range all(secure.block, "proxy_set_header") {
		forwarded[h.args[0]] = h.args[1]
	}
	if forwarded["X-Forwarded-For"] != "$proxy_add_x_forwarded_for" || forwarded["X-Forwarded-Proto"] != "$scheme" || forwarded["Host"] != "$host" {
		t.Errorf("forwarded headers %v: the API reads X-Forwarded-For from the right (api/clientip.go)", forwarded)
	}

	// setting returns a directive's value in a location, else the server's.
	locations := map[string][]directive{}
	for _, loc := range all(secure.block, "location") {
		locations[strings.Join(loc.args, " ")] = loc.block
		// A location's own add_header or proxy_set_header would replace
		// every one of the server's.
		if get(loc.block, "add_header") != nil || get(loc.block, "proxy_set_header") != nil {
			t.Errorf("location %v sets its own headers, losing the server's", loc.args)
		}
	}
	setting := func(loc, name string) string {
		t.Helper()
		block, ok := locations[loc]
		if !ok {
			t.Fatalf("nginx.conf has no location %s", loc)
		}
		if a := get(block, name); a != nil {
			return a[0]
		}
		if a := get(secure.block, name); a != nil {
			return a[0]
		}
		return map[string]string{"client_max_body_size": "1m", "proxy_read_timeout": "60s", "client_body_timeout": "60s", "proxy_buffering": "on"}[name]
	}
	for _, c := range []struct {
		location    string
		body        int
		readTimeout time.Duration // the least time to wait for the API's answer
	}{
		{"/", api.DefaultBodyLimit, api.WriteTimeout},
		{"= /v1/sync/push", api.DefaultBodyLimit, api.WriteTimeout},
		{"= /v1/sync/pull", api.DefaultBodyLimit, api.WriteTimeout},
		{"= /v1/imports", api.DefaultImportBodyLimit, api.WriteTimeout},
		{"/v1/exports/", api.DefaultBodyLimit, api.WriteTimeout},
	} {
		if got := nginxSize(t, setting(c.location, "client_max_body_size")); got != c.body {
			t.Errorf("location %s: client_max_body_size %d bytes, the API takes %d", c.location, got, c.body)
		}
		if got := nginxDuration(t, setting(c.location, "proxy_read_timeout")); got < c.readTimeout {
			t.Errorf("location %s: proxy_read_timeout %s, shorter than the API's %s", c.location, got, c.readTimeout)
		}
		if setting(c.location, "proxy_pass") != "http://fieldcrm" {
			t.Errorf("location %s does not pass to the API", c.location)
		}
	}
	if got := nginxDuration(t, setting("= /v1/imports", "client_body_timeout")); got < api.ImportReadTimeout {
		t.Errorf("imports: client_body_timeout %s, the API gives %s", got, api.ImportReadTimeout)
	}
	if setting("/v1/exports/", "proxy_buffering") != "off" {
		t.Error("exports are buffered by the proxy: a streamed export would reach the client only at its end")
	}
	// Pushes and imports are never replayed on another replica.
	for _, loc := range []string{"= /v1/sync/push", "= /v1/imports"} {
		if setting(loc, "proxy_next_upstream") != "off" {
			t.Errorf("location %s may be replayed on another replica", loc)
		}
	}
	if m, ok := locations["= /metrics"]; !ok || !slices.Equal(get(m, "return"), []string{"404"}) {
		t.Error("/metrics would be forwarded: nginx.conf needs location = /metrics { return 404; }")
	}
}

// TestNginxServesTheConfig runs nginx with deploy/nginx.conf in front of a
// stand-in for the API (listen ports, the upstream's address and the
// certificate's path are the only things changed), and checks what a client
// sees: the redirect, the security headers, the forwarded headers, the body
// limits per route and /metrics refused. nginx is installed by .ci/run;
// elsewhere the test is skipped when it is missing.
func TestNginxServesTheConfig(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, statErr := os.Stat(p); statErr == nil {
				nginx, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("FIELDCRM_E2E") != "" {
			t.Fatal("nginx is not installed: .ci/run installs the Debian package nginx-light")
		}
		t.Skip("nginx is not installed (apt-get install nginx-light); CI runs this test")
	}

	var seen struct {
		forwardedFor, proto string
		bodyBytes           int64
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.forwardedFor, seen.proto = r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto")
		seen.bodyBytes, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"ok"}`)
	}))
	defer backend.Close()

	dir := t.TempDir()
	crt, key := writeTestCertificate(t, dir)
	raw, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	httpPort, httpsPort := freePort(t), freePort(t)
	conf := string(raw)
	backendAddr := strings.TrimPrefix(backend.URL, "http://")
	for old, repl := range map[string]string{
		"server fieldcrm-1:8080":           "server " + backendAddr,
		"server fieldcrm-2:8080":           "server " + backendAddr,
		"listen 80;":                       fmt.Sprintf("listen 127.0.0.1:%d;", httpPort),
		"listen 443 ssl http2;":            fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", httpsPort),
		"/etc/nginx/tls/tls.crt":           crt,
		"/etc/nginx/tls/tls.key":           key,
		"root /var/www/acme;":              "root " + dir + ";",
		"    listen [::]:80;\n":            "",
		"    listen [::]:443 ssl http2;\n": "",
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("nginx.conf no longer has %q: update this test", old)
		}
		conf = strings.ReplaceAll(conf, old, repl)
	}
	if err := os.WriteFile(filepath.Join(dir, "default.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// As root, nginx's workers would run as nobody, who cannot write the
	// request bodies into this test's private directory.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	main := fmt.Sprintf(`daemon off;
%[2]s
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/default.conf;
}
`, dir, user)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(nginx, "-t", "-q", "-e", "stderr", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	var logs bytes.Buffer
	server := exec.Command(nginx, "-e", "stderr", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	server.Stderr = &logs
	// The master process stops its workers on SIGTERM; a killed master
	// would leave them holding the log pipe.
	server.WaitDelay = 5 * time.Second
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = server.Process.Signal(syscall.SIGTERM)
		_ = server.Wait()
		if t.Failed() {
			t.Logf("nginx:\n%s", logs.String())
		}
	})

	client := &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", httpsPort)
	var res *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; {
		res, err = client.Get(base + "/readyz")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("nginx does not answer: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.ProtoMajor != 2 {
		t.Errorf("GET /readyz through nginx: %d over HTTP/%d, want 200 over HTTP/2", res.StatusCode, res.ProtoMajor)
	}
	if !strings.HasPrefix(res.Header.Get("Strict-Transport-Security"), "max-age=") || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers missing: %v", res.Header)
	}
	if seen.proto != "https" {
		t.Errorf("X-Forwarded-Proto %q", seen.proto)
	}

	req, _ := http.NewRequest("GET", base+"/v1/me", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if seen.forwardedFor != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For reached the API as %q: nginx must append the peer it saw", seen.forwardedFor)
	}

	plain, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/me?x=1", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != 301 || plain.Header.Get("Location") != "https://127.0.0.1/v1/me?x=1" {
		t.Errorf("plain HTTP: %d to %q, want a redirect to https", plain.StatusCode, plain.Header.Get("Location"))
	}
	if res, err := client.Get(base + "/metrics"); err != nil || res.StatusCode != 404 {
		t.Errorf("/metrics through nginx: %v %v", res.Status, err)
	}

	post := func(path string, size int) int {
		t.Helper()
		res, err := client.Post(base+path, "application/octet-stream", bytes.NewReader(make([]byte, size)))
		if err != nil {
			t.Fatalf("POST %s of %d bytes: %v", path, size, err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		path string
		size int
		want int
	}{
		{"/v1/sync/push", api.DefaultBodyLimit, 200},
		{"/v1/sync/push", api.DefaultBodyLimit + 1, 413},
		{"/v1/customers", api.DefaultBodyLimit + 1, 413},
		{"/v1/imports", api.DefaultBodyLimit + 1<<20, 200},
	} {
		if got := post(c.path, c.size); got != c.want {
			t.Errorf("POST %s of %d bytes: %d, want %d", c.path, c.size, got, c.want)
		}
	}
	if seen.bodyBytes != api.DefaultBodyLimit+1<<20 {
		t.Errorf("the API received %d bytes of the import", seen.bodyBytes)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeTestCertificate writes a self-signed certificate for 127.0.0.1 and
// its key, as tls.crt and tls.key in dir.
func writeTestCertificate(t *testing.T, dir string) (crt, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	crt, key = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, key
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
