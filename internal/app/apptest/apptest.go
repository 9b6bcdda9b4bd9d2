// Package apptest builds the application for integration tests through
// app.New, on a test's own database and Redis key prefix from
// internal/testenv, so tests run the services wired as serve wires them.
package apptest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

// Config is the application's configuration in tests: fixed secrets, cheap
// password hashing, and limits no ordinary test reaches.
func Config() app.Config {
	generous := app.Limit{Max: 1000, Window: time.Hour}
	return app.Config{
		JWTSecret: []byte("test-secret-test-secret-test-secret!"),
		DataKey:   bytes.Repeat([]byte{7}, 32),
		Accounts: app.Accounts{Password: accounts.CheapPasswordParams,
			LoginPerEmail: generous, LoginPerAddress: generous, RefreshPerAddress: generous, SignupPerAddress: generous},
	}
}

// New builds the application with cfg on st and rd (under rd's key prefix),
// logging nowhere unless opts say otherwise, and closes it when t ends
// (before st and rd, which testenv closes). No other process shares rd
// (app.WithSoleRedis) but the replicas of Replica.
func New(t testing.TB, cfg app.Config, st *store.Store, rd *testenv.Redis, opts ...app.Option) *app.App {
	t.Helper()
	cfg.Redis.Prefix = rd.Prefix
	opts = append([]app.Option{app.WithLogger(testenv.DiscardLogger())}, opts...)
	a, err := app.New(context.Background(), cfg, append(opts, app.WithStore(st), app.WithRedis(rd.Client), app.WithSoleRedis())...)
	t.Cleanup(func() { a.Close(context.Background()) })
	if err != nil {
		t.Fatalf("build the application: %v", err)
	}
	return a
}

// Replica builds another application on a's storage and Redis, as another
// process would be, closed when t ends.
func Replica(t testing.TB, a *app.App, opts ...app.Option) *app.App {
	t.Helper()
	r, err := a.Replica(context.Background(), opts...)
	t.Cleanup(func() { r.Close(context.Background()) })
	if err != nil {
		t.Fatalf("build a replica: %v", err)
	}
	return r
}
