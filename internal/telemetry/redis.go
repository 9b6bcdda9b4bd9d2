package telemetry

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// RedisHook times every command a go-redis client sends (add it with
// client.AddHook). A pipeline or transaction is one call, "pipeline".
func (c *Calls) RedisHook() redis.Hook { return redisHook{c} }

type redisHook struct{ calls *Calls }

// DialHook leaves dialling alone: connections are not calls.
func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		ctx, end := h.calls.Call(ctx, cmd.Name())
		err := next(ctx, cmd)
		end(failure(err))
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, end := h.calls.Call(ctx, "pipeline")
		err := next(ctx, cmds)
		end(failure(err))
		return err
	}
}

// failure is err unless it only says a key was missing.
func failure(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}
