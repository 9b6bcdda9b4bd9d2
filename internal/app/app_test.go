package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/app/apptest"
	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
)

// embeddedConfig is a configuration on the embedded SQLite engine in dir and
// an in-process Redis: what serve runs with no settings.
func embeddedConfig(dir string) app.Config {
	cfg := apptest.Config()
	cfg.Storage = app.Storage{Database: "fieldcrm", DataDir: dir, SQLiteSynchronous: "normal"}
	cfg.Redis.Prefix = "fieldcrm:"
	return cfg
}

func TestEmbeddedApplicationIsAloneAndCloseReleasesItsDataDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	quiet := app.WithLogger(testenv.DiscardLogger())
	first, err := app.New(ctx, embeddedConfig(dir), quiet)
	if err != nil {
		first.Close(ctx)
		t.Fatal(err)
	}
	if !first.Alone || !first.Worker.Alone {
		t.Error("an application on its own SQLite engine and in-process Redis is not alone")
	}
	if err := first.Store.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := app.New(ctx, embeddedConfig(dir), quiet)
	second.Close(ctx)
	if !errors.Is(err, embedded.ErrDirInUse) {
		t.Fatalf("a second application on the same data dir: %v, want it refused", err)
	}

	replica, err := first.Replica(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if replica.Alone || replica.Store != first.Store || replica.CRM == first.CRM {
		t.Errorf("a replica: alone %v, same store %v, same CRM %v; want its own services on the shared store",
			replica.Alone, replica.Store == first.Store, replica.CRM == first.CRM)
	}
	replica.Close(ctx)
	if err := first.Store.Ping(ctx); err != nil {
		t.Fatalf("closing a replica closed the shared store: %v", err)
	}

	first.Close(ctx)
	again, err := app.New(ctx, embeddedConfig(dir), quiet)
	defer again.Close(ctx)
	if err != nil {
		t.Fatalf("after Close, the data dir is still held: %v", err)
	}
}

func TestLimitsThatAllowNothingAreRefused(t *testing.T) {
	cfg := embeddedConfig(t.TempDir())
	cfg.Accounts.SignupPerAddress = app.Limit{Max: 0, Window: time.Hour}
	a, err := app.New(context.Background(), cfg, app.WithLogger(testenv.DiscardLogger()))
	a.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "SignupPerAddress") {
		t.Fatalf("got %v, want the limit named", err)
	}
}

func TestRedisURLForms(t *testing.T) {
	cases := []struct {
		url    string
		addrs  string
		master string
		bad    bool
	}{
		{"redis://127.0.0.1:6379/0", "[127.0.0.1:6379]", "", false},
		{"redis://:pw@a:6379,b:6379,c:6379", "[a:6379 b:6379 c:6379]", "", false},
		{"redis+sentinel://s1:26379,s2:26379/mymaster", "[s1:26379 s2:26379]", "mymaster", false},
		{"redis+sentinel://s1:26379", "", "", true},
		{"http://nope", "", "", true},
	}
	for _, c := range cases {
		opts, err := app.RedisOptions(c.url)
		if c.bad {
			if err == nil {
				t.Errorf("%s: accepted", c.url)
			}
			continue
		}
		if err != nil || fmt.Sprint(opts.Addrs) != c.addrs || opts.MasterName != c.master {
			t.Errorf("%s: %+v %v", c.url, opts, err)
		}
	}
}
