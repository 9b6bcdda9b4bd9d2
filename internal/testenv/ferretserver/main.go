// Command ferretserver runs FerretDB on PostgreSQL, listening on a TCP port,
// for CI: the integration tests then reach it through MONGODB_URI alone, over
// the MongoDB wire protocol, with the store on the driver path a MongoDB
// deployment runs (no direct table access). No MongoDB server can run here.
//
//	go run ./internal/testenv/ferretserver -listen 127.0.0.1:27018 -postgresql-url postgres://…
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL database FerretDB keeps its data in (required)")
	flag.Parse()
	if *pgURL == "" {
		fmt.Fprintln(os.Stderr, "ferretserver: -postgresql-url is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	f, err := embedded.StartFerret(ctx, embedded.Config{PostgreSQLURL: *pgURL, Listen: *listen, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretserver:", err)
		os.Exit(1)
	}
	log.Info("FerretDB on PostgreSQL listening", "uri", f.URI())
	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Close(closeCtx); err != nil {
		fmt.Fprintln(os.Stderr, "ferretserver:", err)
		os.Exit(1)
	}
}
