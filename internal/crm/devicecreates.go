package crm

import (
	"context"
	"errors"

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
// not yet being applied; each of them gets that error, and those being
// applied finish.
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
	st, err := r.svc.settings(ctx, a.TenantID)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return outs, errs
	}
	order := newEntryOrder()
	seqs := make([]int64, len(edits))
	enter := func(i int) (after []int, err error) {
		var names []string
		seqs[i], names, err = r.enterCreate(ctx, a, edits[i], st, order)
		return order.enter(i, names), err
	}
	apply := func(i int) error {
		var err error
		outs[i], err = r.applyDeviceEdit(ctx, a, edits[i], seqs[i])
		return err
	}
	return outs, sideBySide(len(edits), parallel, enter, apply)
}

// enterCreate enters create e of a push (see ApplyDeviceCreates): it
// returns the number sequence the create takes (0 for none) and the names
// it holds in the push's order (its id and keys). A record stored already
// (a push sent again) is applied as an update, which takes no number, and
// one refused by its prepare takes none either.
func (r *Records[R]) enterCreate(ctx context.Context, a models.Actor, e DeviceEdit, st models.Settings, order *entryOrder) (seq int64, names []string, err error) {
	// An update (and a row that cannot be read) waits for every create
	// before it, and every create after it waits for it: its keys, old and
	// new, are not known here.
	names = []string{"id\x00" + e.ID, barrier}
	var rec R
	if decodeColumns(&rec, e.Columns) != nil {
		return 0, names, nil
	}
	exists, err := r.Exists(ctx, a.TenantID, e.ID)
	if err != nil {
		return 0, nil, err
	}
	if exists || order.holds(names[0]) {
		return 0, names, nil
	}
	meta(&rec).TenantID = a.TenantID
	keys, seq, err := r.h.enter(ctx, &rec, st)
	if err != nil {
		return 0, nil, err
	}
	return seq, append(names[:1], keys...), nil
}

// aboutRecord reports whether err refuses a device's record alone (see
// ApplyDeviceEdit) rather than being a fault.
func aboutRecord(err error) bool {
	var invalid *models.ValidationError
	var forbidden *models.ForbiddenError
	return errors.As(err, &invalid) || errors.As(err, &forbidden) ||
		errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrConflict)
}
