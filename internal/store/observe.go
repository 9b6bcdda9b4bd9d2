package store

import (
	"context"
	"errors"
	"sync"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// commandMonitor reports every command the driver sends to calls: the one
// place all of the store's queries and writes through the driver pass. The
// driver tells a command's start and its end apart by request id.
func commandMonitor(calls CallObserver) *event.CommandMonitor {
	var inFlight sync.Map // request id → func(error)
	end := func(id int64, err error) {
		if done, ok := inFlight.LoadAndDelete(id); ok {
			done.(func(error))(err)
		}
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			_, done := calls.Call(ctx, e.CommandName)
			inFlight.Store(e.RequestID, done)
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { end(e.RequestID, nil) },
		Failed: func(_ context.Context, e *event.CommandFailedEvent) {
			end(e.RequestID, errors.New(e.Failure))
		},
	}
}

// observe tells s's observer of a read the embedded engines answer in SQL,
// bypassing the driver (a list, a stream, a pull's changes, a report's
// tallies): operation names it. Call the function it returns with the
// read's error when it ends.
func (s *Store) observe(ctx context.Context, operation string) (context.Context, func(error)) {
	if s.calls == nil {
		return ctx, func(error) {}
	}
	ctx, done := s.calls.Call(ctx, operation)
	return ctx, func(err error) { done(expected(err)) }
}

// observedIDTables reports the reads and writes by _id that bypass the
// driver (see IDTables) to calls.
type observedIDTables struct {
	next  IDTables
	calls CallObserver
}

// expected is err unless it is an answer rather than a failure: a missing
// document, a claim lost to another writer, or an operation handed back to
// the driver.
func expected(err error) error {
	if errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrConflict) || errors.Is(err, errors.ErrUnsupported) ||
		errors.Is(err, embedded.ErrUntranslatable) {
		return nil
	}
	return err
}

func (o observedIDTables) Get(ctx context.Context, coll, id string) (bson.Raw, error) {
	ctx, done := o.calls.Call(ctx, "byid_get")
	raw, err := o.next.Get(ctx, coll, id)
	done(expected(err))
	return raw, err
}

func (o observedIDTables) Write(ctx context.Context, writes ...embedded.DocWrite) error {
	ctx, done := o.calls.Call(ctx, "byid_write")
	err := o.next.Write(ctx, writes...)
	done(expected(err))
	return err
}

func (o observedIDTables) Delete(ctx context.Context, coll, id string) error {
	ctx, done := o.calls.Call(ctx, "byid_delete")
	err := o.next.Delete(ctx, coll, id)
	done(expected(err))
	return err
}
