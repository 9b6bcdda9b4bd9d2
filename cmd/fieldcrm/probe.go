package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// probeCommand asks a running server whether it is ready (or, with --path
// /healthz, alive). Container images built FROM scratch have no curl or wget,
// so health checks run the binary itself; it reads the role the container
// runs (FIELDCRM_ROLE), so that one HEALTHCHECK line serves both: an API
// process is asked on its API port, a worker (which has none) on its
// health and metrics port.
func probeCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := getenv("FIELDCRM_ROLE")
	if role == "" {
		role = roleAll
	}
	fs.StringVar(&role, "role", role, "the server's role: all or api are asked on FIELDCRM_ADDR, worker on FIELDCRM_METRICS_ADDR (FIELDCRM_ROLE)")
	addrFlag := fs.String("addr", "", "ask this address instead of the one the role listens on")
	path := fs.String("path", "/readyz", "what to ask: /readyz (ready for traffic) or /healthz (alive)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path != "/readyz" && *path != "/healthz" {
		return usageError{"--path must be /readyz or /healthz"}
	}
	addr, err := probeAddr(role, *addrFlag, getenv)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError{fmt.Sprintf("--addr %q: %v", addr, err)}
	}
	// A server listening on every interface (":8080", "0.0.0.0:8080") is
	// asked on loopback.
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + *path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %d %s", url, res.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "%s: %s\n", url, strings.TrimSpace(string(body)))
	return nil
}

// probeAddr is the address to ask: the one given, else where the role
// serves its probes.
func probeAddr(role, given string, getenv func(string) string) (string, error) {
	if given != "" {
		return given, nil
	}
	var key, def string
	switch role {
	case roleAll, roleAPI:
		key, def = "FIELDCRM_ADDR", defaultAddr
	case roleWorker:
		key, def = "FIELDCRM_METRICS_ADDR", defaultMetricsAddr
	default:
		return "", usageError{fmt.Sprintf("--role %q: want all, api or worker", role)}
	}
	if v := getenv(key); v != "" {
		return v, nil
	}
	return def, nil
}
