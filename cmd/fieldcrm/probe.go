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
// so compose health checks run the binary itself. It asks the API's port,
// or, for a worker (FIELDCRM_ROLE=worker), which has none, the metrics
// port: the same image's health check suits either role.
func probeCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := getenv("FIELDCRM_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	if getenv("FIELDCRM_ROLE") == roleWorker {
		if addr = getenv("FIELDCRM_METRICS_ADDR"); addr == "" {
			addr = defaultMetricsAddr
		}
	}
	fs.StringVar(&addr, "addr", addr, "the server's listen address (FIELDCRM_ADDR; for FIELDCRM_ROLE=worker, FIELDCRM_METRICS_ADDR)")
	path := fs.String("path", "/readyz", "what to ask: /readyz (ready for traffic) or /healthz (alive)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path != "/readyz" && *path != "/healthz" {
		return usageError{"--path must be /readyz or /healthz"}
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
