package watermelon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// hookWriter writes to buf, and runs hook once, after the first write
// holding after.
type hookWriter struct {
	buf   bytes.Buffer
	after string
	hook  func()
}

func (w *hookWriter) Write(b []byte) (int, error) {
	n, err := w.buf.Write(b)
	if hook := w.hook; hook != nil && bytes.Contains(b, []byte(w.after)) {
		w.hook = nil
		hook()
	}
	return n, err
}

// TestWholeFirstSyncHoldsEachRecordOnceAsItWasLast: a whole first sync
// reads a chunk of records at a time and writes each chunk before reading the
// next. Records edited while it is sent move above its timestamp: one
// already written must not come twice (WatermelonDB refuses a response that
// names a record twice), one not yet read must still come (in its newer
// version), and the next pull brings both as updated.
func TestWholeFirstSyncHoldsEachRecordOnceAsItWasLast(t *testing.T) {
	ctx := context.Background()
	a, tenant := appWithTenant(t, "Whole")
	const pageSize = 10
	engine := watermelon.New(a.CRM, a.Sequencer, a.Store, pageSize)
	desk := models.Actor{UserID: "desk", TenantID: tenant.ID, Role: models.RoleAdmin}
	phone := models.Actor{UserID: "admin", TenantID: tenant.ID, Role: models.RoleAdmin, DeviceID: "phone"}
	var ids []string
	for i := range 3*pageSize + 5 {
		c, err := a.CRM.CreateCustomer(ctx, desk, models.Customer{CustomerFields: models.CustomerFields{Name: fmt.Sprint("Customer ", i)}}, false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	gone := ids[3]
	if err := a.CRM.Customers.Delete(ctx, desk, gone, 0); err != nil {
		t.Fatal(err)
	}
	retitle := func(id, title string) {
		if _, err := a.CRM.Customers.Update(ctx, desk, id, 0, func(dst any) error {
			dst.(*models.Customer).Title = title
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	written, unread := ids[0], ids[len(ids)-1]

	first, err := engine.StartWholeFirstSync(ctx, phone)
	if err != nil {
		t.Fatal(err)
	}
	out := &hookWriter{after: written, hook: func() {
		retitle(written, "edited after it was written")
		retitle(unread, "edited before it was read")
	}}
	n, err := first.Send(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	var body watermelon.PullResult
	if err := json.Unmarshal(out.buf.Bytes(), &body); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.buf.Bytes())
	}
	if body.HasMore || body.Timestamp != first.Until() {
		t.Fatalf("has_more %v, timestamp %d; want false and %d", body.HasMore, body.Timestamp, first.Until())
	}
	if len(body.Changes) != len(engine.Schema().Tables) {
		t.Fatalf("%d tables in the body, the schema has %d", len(body.Changes), len(engine.Schema().Tables))
	}
	for name, tc := range body.Changes {
		if len(tc.Updated) != 0 || len(tc.Deleted) != 0 || (name != "customers" && len(tc.Created) != 0) {
			t.Fatalf("%s: %d created, %d updated, %d deleted", name, len(tc.Created), len(tc.Updated), len(tc.Deleted))
		}
	}
	var got []string
	titles := map[string]any{}
	for _, r := range body.Changes["customers"].Created {
		got = append(got, r["id"].(string))
		titles[r["id"].(string)] = r["title"]
	}
	want := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == gone })
	if slices.Sort(got); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("the customers sent (%d):\n%v\nwant each live one once (%d):\n%v", len(got), got, len(want), want)
	}
	if n != len(want) {
		t.Fatalf("Send counted %d records, the body holds %d", n, len(want))
	}
	if titles[unread] != "edited before it was read" || titles[written] != "" {
		t.Fatalf("titles: the one read late %q, the one written first %q", titles[unread], titles[written])
	}

	next, err := engine.Pull(ctx, phone, body.Timestamp, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := next.Changes["customers"]
	var updated []string
	for _, r := range c.Updated {
		updated = append(updated, r["id"].(string))
	}
	if len(c.Created) != 0 || !slices.Contains(updated, written) || !slices.Contains(updated, unread) {
		t.Fatalf("the pull after: %d created, updated %v; want %s and %s updated", len(c.Created), updated, written, unread)
	}
}
