package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// Writers that each add their devices to one set, starting before the set
// exists, lose none of each other's: every edit is in the set, once, with
// one version and one audit entry per edit. Both write paths are raced:
// the embedded engine's direct writes and FerretDB's own; two writers with
// many edits each, and a crowd of 40 starting at once, where one writer
// loses many rounds in a row and must still get its turn.
func TestReviseWritersLoseNoUpdate(t *testing.T) {
	ctx := context.Background()
	direct := env.Store(t)
	viaFerret := throughFerretDB(t, direct)

	for name, st := range map[string]*store.Store{"direct": direct, "through FerretDB": viaFerret} {
		for _, shape := range []struct{ writers, edits int }{{2, 10}, {40, 2}} {
			t.Run(fmt.Sprintf("%s/%d writers", name, shape.writers), func(t *testing.T) {
				writers, edits := shape.writers, shape.edits
				user := models.NewID()
				id := models.DeviceSetID("t1", user)
				var wg sync.WaitGroup
				errs := make([]error, writers)
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for e := range edits {
							var set models.DeviceSet
							err := st.Revise(ctx, store.DeviceSets, "t1", id, &set, func(rev *models.Revision) error {
								set.UserID = user
								set.Devices = append(set.Devices, models.Device{DeviceID: fmt.Sprintf("w%d-%02d", w, e)})
								rev.At, rev.By, rev.Action = time.Now().UTC(), user, "add device"
								return nil
							})
							if err != nil {
								errs[w] = err
								return
							}
						}
					}()
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				var set models.DeviceSet
				if err := st.Get(ctx, store.DeviceSets, "t1", id, &set); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, d := range set.Devices {
					got = append(got, d.DeviceID)
				}
				slices.Sort(got)
				var want []string
				for w := range writers {
					for e := range edits {
						want = append(want, fmt.Sprintf("w%d-%02d", w, e))
					}
				}
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("devices after %d edits:\n got %v\nwant %v", writers*edits, got, want)
				}
				if set.Version != int64(writers*edits) || set.CreatedBy != user {
					t.Fatalf("version %d created by %q, want %d by %q", set.Version, set.CreatedBy, writers*edits, user)
				}
				audit, err := st.Audit(ctx, "t1", store.DeviceSets, id, nil, 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(audit) != writers*edits {
					t.Fatalf("%d audit entries, want %d", len(audit), writers*edits)
				}
			})
		}
	}
}

// A new record is written as version 1 with its creation stamped; an edit
// that skips or fails writes nothing; an edit of another tenant's record
// sees none.
func TestReviseCreatesVersionsAndWritesNothingWhenTheEditDeclines(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	id := models.DeviceSetID("t1", "u1")
	add := func(device string) func(set *models.DeviceSet) func(rev *models.Revision) error {
		return func(set *models.DeviceSet) func(rev *models.Revision) error {
			return func(rev *models.Revision) error {
				set.UserID = "u1"
				set.Devices = append(set.Devices, models.Device{DeviceID: device})
				rev.At, rev.By, rev.Action = at, "u1", "add "+device
				return nil
			}
		}
	}
	revise := func(tenant string, edit func(set *models.DeviceSet) func(rev *models.Revision) error) (models.DeviceSet, error) {
		var set models.DeviceSet
		err := st.Revise(ctx, store.DeviceSets, tenant, id, &set, edit(&set))
		return set, err
	}

	created, err := revise("t1", add("a"))
	if err != nil {
		t.Fatal(err)
	}
	if created.Version != 1 || created.ID != id || created.TenantID != "t1" || !created.CreatedAt.Equal(at) || created.CreatedBy != "u1" {
		t.Fatalf("new record stamped %+v", created.Meta)
	}
	if _, err := revise("t1", add("b")); err != nil {
		t.Fatal(err)
	}

	refused := errors.New("refused")
	declines := []struct {
		name    string
		edit    func(set *models.DeviceSet) func(rev *models.Revision) error
		wantErr bool
	}{
		{"skip", func(set *models.DeviceSet) func(rev *models.Revision) error {
			return func(rev *models.Revision) error { set.Devices = nil; rev.Skip = true; return nil }
		}, false},
		{"error", func(set *models.DeviceSet) func(rev *models.Revision) error {
			return func(rev *models.Revision) error { set.Devices = nil; rev.At = at; return refused }
		}, true},
		{"no time", func(set *models.DeviceSet) func(rev *models.Revision) error {
			return func(rev *models.Revision) error { set.Devices = nil; return nil }
		}, true},
	}
	for _, c := range declines {
		_, err := revise("t1", c.edit)
		if (err != nil) != c.wantErr || (c.name == "error" && !errors.Is(err, refused)) {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	var stored models.DeviceSet
	if err := st.Get(ctx, store.DeviceSets, "t1", id, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Version != 2 || len(stored.Devices) != 2 {
		t.Fatalf("after declined edits: version %d, devices %v", stored.Version, stored.Devices)
	}

	// The same id seen from another tenant is not there: the edit starts
	// from nothing.
	var seen models.DeviceSet
	err = st.Revise(ctx, store.DeviceSets, "t2", id, &seen, func(rev *models.Revision) error {
		if rev.Found || len(seen.Devices) > 0 {
			t.Errorf("another tenant's edit found the record: %+v", seen)
		}
		return models.ErrNotFound
	})
	if !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("another tenant's edit: %v", err)
	}
}
