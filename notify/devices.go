package notify

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// deviceStore is the device registry's persistence (package store).
type deviceStore interface {
	Get(ctx context.Context, coll, tenant, id string, out any) error
	// Revise is the versioned read-modify-write of record id (see
	// models.Revision), again from a fresh read when another writer
	// committed first.
	Revise(ctx context.Context, coll, tenant, id string, rec any, edit func(rev *models.Revision) error) error
	TokenOwnerOf(ctx context.Context, tenant, token string) (models.TokenOwner, error)
	SetTokenOwner(ctx context.Context, o models.TokenOwner) error
	DeleteTokenOwner(ctx context.Context, o models.TokenOwner) error
}

// Devices is the registry of the phones that receive a user's pushes.
type Devices struct {
	store deviceStore
	now   func() time.Time
}

// NewDevices returns the registry.
func NewDevices(st deviceStore, now func() time.Time) *Devices {
	if now == nil {
		now = time.Now
	}
	return &Devices{store: st, now: now}
}

// List returns the user's devices.
func (d *Devices) List(ctx context.Context, tenant, user string) ([]models.Device, error) {
	var set models.DeviceSet
	err := d.store.Get(ctx, store.DeviceSets, tenant, models.DeviceSetID(tenant, user), &set)
	if errors.Is(err, models.ErrNotFound) {
		return []models.Device{}, nil
	}
	if err != nil {
		return nil, err
	}
	return set.Devices, nil
}

// Register adds or refreshes a device of the signed-in user. A token that
// belonged to another device of the same tenant (a phone passed to a
// colleague, a reinstall) leaves that device first, so nobody gets another
// person's reminders. A registration of the same token in another tenant is
// left alone: nobody in one tenant can prove they hold the phone, and letting
// them remove it would let anyone who learned a token silence another
// tenant's reminders. Pushes still go only to the devices the recipient's
// own tenant registered for them; the phone's app signs out of one tenant
// (logout unregisters the device) before it signs in to the other.
func (d *Devices) Register(ctx context.Context, a models.Actor, dev models.Device) (models.Device, error) {
	if err := dev.Prepare(); err != nil {
		return dev, err
	}
	dev.UpdatedAt = d.now().UTC().Truncate(time.Millisecond)
	dev.SessionID = a.SessionID
	owner := models.TokenOwner{Token: dev.FCMToken, TenantID: a.TenantID, UserID: a.UserID, DeviceID: dev.DeviceID}
	previous, err := d.store.TokenOwnerOf(ctx, a.TenantID, dev.FCMToken)
	switch {
	case errors.Is(err, models.ErrNotFound):
	case err != nil:
		return dev, err
	case previous != owner:
		if err := d.drop(ctx, previous.TenantID, previous.UserID, previous.DeviceID, dev.FCMToken); err != nil {
			return dev, err
		}
	}
	var replaced string
	err = d.change(ctx, a.TenantID, a.UserID, func(set *models.DeviceSet) bool {
		i := slices.IndexFunc(set.Devices, func(x models.Device) bool { return x.DeviceID == dev.DeviceID })
		if i < 0 {
			set.Devices = append(set.Devices, dev)
			return true
		}
		replaced = set.Devices[i].FCMToken
		set.Devices[i] = dev
		return true
	})
	if err != nil {
		return dev, err
	}
	if replaced != "" && replaced != dev.FCMToken {
		_ = d.store.DeleteTokenOwner(ctx, models.TokenOwner{Token: replaced, TenantID: a.TenantID, UserID: a.UserID, DeviceID: dev.DeviceID})
	}
	return dev, d.store.SetTokenOwner(ctx, owner)
}

// Unregister removes a device of the signed-in user (and its token); it is
// what logout does for the device of the session. A device that is not
// registered is fine.
func (d *Devices) Unregister(ctx context.Context, a models.Actor, deviceID string) error {
	return d.drop(ctx, a.TenantID, a.UserID, deviceID, "")
}

// ForgetUser removes every device of a user (deactivated: their phone stops
// getting pushes, and its token is free for whoever signs in on it next).
func (d *Devices) ForgetUser(ctx context.Context, tenant, user string) error {
	return d.forget(ctx, tenant, user, func(models.Device) bool { return true })
}

// ForgetSession removes the devices of an ended sign-in: those it registered,
// under any id, and the one named by its device id (registrations older than
// the session's record on the device carry only that).
func (d *Devices) ForgetSession(ctx context.Context, s models.Session) error {
	return d.forget(ctx, s.TenantID, s.UserID, func(dev models.Device) bool { return ofSession(dev, s) })
}

// ForgetUserExcept removes every device of a user but those of the session
// keep (after a password change, the phone that made it keeps its pushes).
func (d *Devices) ForgetUserExcept(ctx context.Context, keep models.Session) error {
	return d.forget(ctx, keep.TenantID, keep.UserID, func(dev models.Device) bool { return !ofSession(dev, keep) })
}

// ofSession says whether the session registered dev or is signed in as it.
func ofSession(dev models.Device, s models.Session) bool {
	return (s.ID != "" && dev.SessionID == s.ID) || (s.DeviceID != "" && dev.DeviceID == s.DeviceID)
}

// forget removes the user's devices that match.
func (d *Devices) forget(ctx context.Context, tenant, user string, match func(models.Device) bool) error {
	devices, err := d.List(ctx, tenant, user)
	if err != nil {
		return err
	}
	for _, dev := range devices {
		if !match(dev) {
			continue
		}
		if err := d.drop(ctx, tenant, user, dev.DeviceID, ""); err != nil {
			return err
		}
	}
	return nil
}

// drop removes the device from the user's set, only while its token is still
// token when token is not empty (a token FCM called dead, or one that moved).
func (d *Devices) drop(ctx context.Context, tenant, user, deviceID, token string) error {
	var removed models.Device
	err := d.change(ctx, tenant, user, func(set *models.DeviceSet) bool {
		i := slices.IndexFunc(set.Devices, func(x models.Device) bool {
			return x.DeviceID == deviceID && (token == "" || x.FCMToken == token)
		})
		if i < 0 {
			return false
		}
		removed = set.Devices[i]
		set.Devices = slices.Delete(set.Devices, i, i+1)
		return true
	})
	if err != nil || removed.FCMToken == "" {
		return err
	}
	return d.store.DeleteTokenOwner(ctx, models.TokenOwner{Token: removed.FCMToken, TenantID: tenant, UserID: user, DeviceID: deviceID})
}

// change applies edit to the user's device set as a versioned write, the
// same as any record's: again from a fresh read when another registration
// got in first. edit says whether it changed anything.
func (d *Devices) change(ctx context.Context, tenant, user string, edit func(set *models.DeviceSet) bool) error {
	var set models.DeviceSet
	return d.store.Revise(ctx, store.DeviceSets, tenant, models.DeviceSetID(tenant, user), &set, func(rev *models.Revision) error {
		if !rev.Found {
			set.UserID = user
		}
		if !edit(&set) {
			rev.Skip = true
			return nil
		}
		set.OwnerID = user
		rev.At, rev.By, rev.Action = d.now().UTC(), user, "change devices"
		if !rev.Found {
			rev.Action = "register device"
		}
		return nil
	})
}
