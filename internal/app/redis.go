package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fieldcrm/fieldcrm/sync/cursor"
)

// Redis says where Redis is: URL (see RedisOptions), or with no URL an
// in-process Redis that keeps nothing across restarts.
type Redis struct {
	URL string
	// Prefix starts every key of this application's.
	Prefix string
}

// openRedis connects to the configured Redis, starts an in-process one, or
// takes the client given by WithRedis, which stays the caller's to close.
// inProcess says it started one, which no other process can reach.
func (a *App) openRedis(ctx context.Context) (inProcess bool, err error) {
	switch {
	case a.opts.redis != nil:
		a.Redis = a.opts.redis
	case a.cfg.Redis.URL == "":
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return false, fmt.Errorf("start in-process Redis: %w", err)
		}
		a.log.Warn("redis: IN-PROCESS miniredis — it keeps NOTHING across restarts (login limits, schedules); set REDIS_URL for production")
		client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		client.AddHook(a.Telemetry.Redis.RedisHook())
		a.closers = append(a.closers, func(context.Context) { _ = client.Close(); mr.Close() })
		a.Redis = client
		return true, nil
	default:
		opts, err := RedisOptions(a.cfg.Redis.URL)
		if err != nil {
			return false, err
		}
		a.redisWatch = cursor.NewWatch()
		opts.OnConnect = a.redisWatch.OnConnect
		client := redis.NewUniversalClient(opts)
		client.AddHook(a.Telemetry.Redis.RedisHook())
		pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := client.Ping(pingCtx).Err(); err != nil {
			_ = client.Close()
			return false, fmt.Errorf("ping Redis: %w", err)
		}
		a.log.Info("redis: connected", "addrs", opts.Addrs, "sentinel_master", opts.MasterName)
		if cluster := len(opts.Addrs) > 1 && opts.MasterName == ""; !cluster && a.redisWatch.Server() == "" {
			a.log.Warn("redis: cannot read the server's run_id (INFO server refused?): a Redis restart or failover that takes the sync counter back is noticed only by the replica that held the higher numbers; allow INFO for this user")
		}
		a.closers = append(a.closers, func(context.Context) { _ = client.Close() })
		a.Redis = client
	}
	return false, nil
}

// RedisOptions turns a Redis URL into UniversalClient options. A plain
// redis:// or rediss:// URL is one server; several comma-separated host:port
// after the scheme make a Cluster; redis+sentinel://host1,host2/master-name
// uses Sentinel.
func RedisOptions(raw string) (*redis.UniversalOptions, error) {
	if rest, ok := strings.CutPrefix(raw, "redis+sentinel://"); ok {
		hosts, master, _ := strings.Cut(rest, "/")
		if hosts == "" || master == "" {
			return nil, errors.New("REDIS_URL: sentinel form is redis+sentinel://host:26379,host2:26379/master-name")
		}
		return &redis.UniversalOptions{Addrs: strings.Split(hosts, ","), MasterName: master}, nil
	}
	if scheme, rest, ok := strings.Cut(raw, "://"); ok && strings.Contains(strings.SplitN(rest, "/", 2)[0], ",") {
		hostPart := strings.SplitN(rest, "/", 2)[0]
		u := &redis.UniversalOptions{}
		if at := strings.LastIndex(hostPart, "@"); at >= 0 {
			user, pass, _ := strings.Cut(hostPart[:at], ":")
			u.Username, u.Password = user, pass
			hostPart = hostPart[at+1:]
		}
		u.Addrs = strings.Split(hostPart, ",")
		if scheme == "rediss" {
			return nil, errors.New("REDIS_URL: TLS Cluster URLs are not supported yet; use a single rediss:// endpoint")
		}
		return u, nil
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return &redis.UniversalOptions{
		Addrs: []string{opts.Addr}, Username: opts.Username, Password: opts.Password, DB: opts.DB, TLSConfig: opts.TLSConfig,
	}, nil
}
