package crm

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/fieldcrm/fieldcrm/models"
)

// ApplyDeviceCreates applies records a device pushed as created (e.Created),
// each as ApplyDeviceEdit does, and returns each one's outcome and error in
// the order of edits. Errors are classified as ApplyDeviceEdit's: one about
// the record refuses that record alone, and its neighbours are applied.
//
// The outcome is what applying them one after another in their order gives,
// but up to parallel are under way at once, so that their writes share
// commits (the embedded engines' group commit) and their reads overlap. In
// the push's order, each create is entered (hooks.enter): it learns its keys
// and takes its customer number, so numbers follow the order the rep created
// the customers in. It is then applied as soon as every earlier create that
// shares a key or its id with it has finished, so that two rows giving two
// customers one phone see each other as one after another would; rows
// sharing nothing do not wait for each other. A collection without
// hooks.enter applies its creates one after another.
//
// The first error that is not about its record (a fault) stops the creates
// not yet entered; each of them gets that error, and those under way finish.
func (r *Records[R]) ApplyDeviceCreates(ctx context.Context, a models.Actor, edits []DeviceEdit, parallel int) ([]DeviceOutcome, []error) {
	outs := make([]DeviceOutcome, len(edits))
	errs := make([]error, len(edits))
	if r.h.enter == nil {
		for i, e := range edits {
			outs[i], errs[i] = r.ApplyDeviceEdit(ctx, a, e)
			if errs[i] != nil && !aboutRecord(errs[i]) {
				for j := i + 1; j < len(edits); j++ {
					errs[j] = errs[i]
				}
				break
			}
		}
		return outs, errs
	}
	var (
		wg       sync.WaitGroup
		faultMu  sync.Mutex
		fault    error
		slots    = make(chan struct{}, max(parallel, 1))
		finished = make([]chan struct{}, len(edits))
		order    = &pushOrder{last: map[string]int{}}
	)
	faulted := func(err error) error {
		faultMu.Lock()
		defer faultMu.Unlock()
		if fault == nil && err != nil && !aboutRecord(err) {
			fault = err
		}
		return fault
	}
	st, err := r.svc.settings(ctx, a.TenantID)
	faulted(err)
	for i, e := range edits {
		if err := faulted(nil); err != nil {
			for j := i; j < len(edits); j++ {
				errs[j] = err
			}
			break
		}
		finished[i] = make(chan struct{})
		seq, after, err := r.enterCreate(ctx, a, e, st, order, i)
		if err != nil {
			faulted(err) // a fault ends the loop above
			errs[i] = err
			close(finished[i])
			continue
		}
		var waits []chan struct{}
		for _, j := range after {
			waits = append(waits, finished[j])
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer close(finished[i])
			for _, w := range waits {
				<-w
			}
			outs[i], errs[i] = r.applyDeviceEdit(ctx, a, e, seq)
			faulted(errs[i])
		}()
	}
	wg.Wait()
	return outs, errs
}

// pushOrder is what ApplyDeviceCreates knows of the creates entered so far.
type pushOrder struct {
	// last is the latest create holding each key (and each id).
	last map[string]int
	// since are the creates entered since the latest barrier (see below).
	since []int
}

// enterCreate enters create e, number i of a push (see ApplyDeviceCreates):
// it returns the number sequence the create takes (0 for none) and the
// earlier creates it must wait for, and records in order the keys it holds.
// A record stored already (a push sent again) is applied as an update,
// which takes no number, and one refused by its prepare takes none either.
func (r *Records[R]) enterCreate(ctx context.Context, a models.Actor, e DeviceEdit, st models.Settings, order *pushOrder, i int) (seq int64, after []int, err error) {
	// An update (and a row that cannot be read) waits for every create
	// before it, and every create after it waits for it: its keys, old and
	// new, are not known here. It waits for the latest barrier and the
	// creates since, which waited for the ones before.
	names := []string{"id\x00" + e.ID, barrier}
	var rec R
	if decodeColumns(&rec, e.Columns) == nil {
		exists, err := r.Exists(ctx, a.TenantID, e.ID)
		if err != nil {
			return 0, nil, err
		}
		_, sentBefore := order.last[names[0]]
		if !exists && !sentBefore {
			meta(&rec).TenantID = a.TenantID
			keys, s, err := r.h.enter(ctx, &rec, st)
			if err != nil {
				return 0, nil, err
			}
			names, seq = append(names[:1], keys...), s
		}
	}
	for _, name := range names {
		if j, ok := order.last[name]; ok {
			after = append(after, j)
		}
		order.last[name] = i
	}
	if slices.Contains(names, barrier) {
		after, order.since = append(after, order.since...), nil
	} else {
		if j, ok := order.last[barrier]; ok {
			after = append(after, j)
		}
		order.since = append(order.since, i)
	}
	return seq, after, nil
}

// barrier is the key of creates that wait for all before them, and all
// after them for them (see enterCreate).
const barrier = "\x00all"

// aboutRecord reports whether err refuses a device's record alone (see
// ApplyDeviceEdit) rather than being a fault.
func aboutRecord(err error) bool {
	var invalid *models.ValidationError
	var forbidden *models.ForbiddenError
	return errors.As(err, &invalid) || errors.As(err, &forbidden) ||
		errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrConflict)
}
