package watermelon_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

func column(t *testing.T, s watermelon.Schema, table, name string) *watermelon.Column {
	t.Helper()
	for _, tb := range s.Tables {
		if tb.Name != table {
			continue
		}
		for i := range tb.Columns {
			if tb.Columns[i].Name == name {
				return &tb.Columns[i]
			}
		}
	}
	return nil
}

// jsonOf reads a value through its JSON form, as a client reads the schema.
func jsonOf(t *testing.T, v any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSchemaColumnsCarryEnumerationsRequiredFlagsAndJSONShapes(t *testing.T) {
	s := newFixture(t, 0).engine.Schema()
	for _, tc := range []struct {
		table, column string
		enum          []string
		required      bool
	}{
		{"customers", "kind", models.CustomerKinds, false},
		{"customers", "stage", models.Stages, false},
		{"customers", "name", nil, true},
		{"interactions", "channel", models.Channels, true},
		{"interactions", "customer_id", nil, true},
		{"tasks", "status", models.TaskStatuses, false},
		{"payments", "method", models.PaymentMethods, true},
		{"loyalty_entries", "kind", models.PointsKinds, true},
		{"tickets", "priority", models.TicketPriorities, false},
	} {
		c := column(t, s, tc.table, tc.column)
		if c == nil || !slices.Equal(c.Enum, tc.enum) || c.Required != tc.required {
			t.Errorf("%s.%s: %+v; want enum %v, required %v", tc.table, tc.column, c, tc.enum, tc.required)
		}
	}
	if c := column(t, s, "customers", "title"); c == nil || c.Enum != nil || c.Required {
		t.Errorf("customers.title has rules: %+v", c)
	}

	// JSON columns describe their decoded value, nested rules included.
	social := jsonOf(t, column(t, s, "customers", "social").JSONSchema)
	items := social["items"].(map[string]any)
	network := items["properties"].(map[string]any)["network"].(map[string]any)
	if !slices.Equal(social["type"].([]any), []any{"array", "null"}) || network["type"] != "string" ||
		len(network["enum"].([]any)) != len(models.SocialNetworks) || !slices.Equal(items["required"].([]any), []any{"handle", "network"}) {
		t.Errorf("customers.social shape: %v", social)
	}
	checkIn := jsonOf(t, column(t, s, "interactions", "check_in").JSONSchema)
	props := checkIn["properties"].(map[string]any)
	if !slices.Equal(checkIn["type"].([]any), []any{"object", "null"}) || props["lat"].(map[string]any)["type"] != "number" ||
		props["address"].(map[string]any)["type"] != "string" {
		t.Errorf("interactions.check_in shape: %v", checkIn)
	}
	next := jsonOf(t, column(t, s, "interactions", "next_step").JSONSchema)
	if due := next["properties"].(map[string]any)["due_at"].(map[string]any); due["format"] != "date-time" {
		t.Errorf("interactions.next_step.due_at: %v", due)
	}
	if c := column(t, s, "customers", "name"); c.JSONSchema != nil {
		t.Errorf("a plain column has a JSON shape: %v", c.JSONSchema)
	}
}

func TestSchemaNamesTheServersTimesApartFromWatermelonDBs(t *testing.T) {
	s := newFixture(t, 0).engine.Schema()
	if s.Version != watermelon.SchemaVersion {
		t.Fatalf("version %d", s.Version)
	}
	for _, tb := range s.Tables {
		for _, name := range []string{"server_created_at", "server_updated_at"} {
			c := column(t, s, tb.Name, name)
			if c == nil || c.Type != watermelon.TypeNumber || !c.Time || !c.ReadOnly {
				t.Errorf("%s.%s: %+v; want a read-only time", tb.Name, name, c)
			}
		}
		for _, name := range []string{"created_at", "updated_at"} {
			if column(t, s, tb.Name, name) != nil {
				t.Errorf("%s has a server column %s, which WatermelonDB's conventions own", tb.Name, name)
			}
		}
	}
}

func TestSchemaAtEarlierVersionsAndTheMigrationsFromThem(t *testing.T) {
	s := newFixture(t, 0).engine.Schema()
	v1, err := s.At(1)
	if err != nil {
		t.Fatal(err)
	}
	if column(t, v1, "customers", "external_ref") != nil || column(t, v1, "customers", "created_at") == nil ||
		column(t, v1, "customers", "server_created_at") != nil || slices.ContainsFunc(v1.Tables, func(tb watermelon.Table) bool { return tb.Name == "notifications" }) {
		t.Fatalf("version 1: %+v", v1)
	}
	v3, _ := s.At(3)
	if column(t, v3, "customers", "external_ref") == nil || column(t, v3, "notifications", "updated_at") == nil {
		t.Fatalf("version 3 lacks external_ref or notifications: %+v", v3)
	}
	if _, err := s.At(5); err == nil {
		t.Fatal("a version after the current one is accepted")
	}

	from3, err := s.MigrationFrom(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(from3.Tables) != 0 || len(from3.Columns) != len(s.Tables) {
		t.Fatalf("from 3: %+v", from3)
	}
	for _, mc := range from3.Columns {
		if !slices.Equal(mc.Columns, []string{"server_created_at", "server_updated_at"}) {
			t.Errorf("from 3, table %s adds %v", mc.Table, mc.Columns)
		}
	}
	from1, _ := s.MigrationFrom(1)
	customers := from1.Columns[slices.IndexFunc(from1.Columns, func(mc watermelon.MigrationColumns) bool { return mc.Table == "customers" })]
	if !slices.Equal(from1.Tables, []string{"notifications"}) || !slices.Equal(sorted(customers.Columns...), []string{"external_ref", "server_created_at", "server_updated_at"}) {
		t.Fatalf("from 1: %+v", from1)
	}
	if slices.ContainsFunc(from1.Columns, func(mc watermelon.MigrationColumns) bool { return mc.Table == "notifications" }) {
		t.Fatal("from 1 adds columns to a table it creates")
	}
	if err := watermelon.CheckMigration(from1); err != nil {
		t.Fatal(err)
	}
}

func TestAppAtVersion3MigratesAndWatermelonDBsOwnTimesAreIgnoredInPushes(t *testing.T) {
	f := newFixture(t, 0)
	c := f.customer(t, "Before the rename")
	cursor := f.pull(t, 0, nil).Timestamp
	mig, err := f.engine.Schema().MigrationFrom(3)
	if err != nil {
		t.Fatal(err)
	}
	got := f.pull(t, cursor, &mig)
	rows := got.Changes["customers"].Updated
	if len(rows) != 1 || rows[0]["id"] != c.ID || rows[0]["server_created_at"] != c.CreatedAt.UnixMilli() || rows[0]["created_at"] != nil {
		t.Fatalf("migration pull from 3: customers updated %v; want %s with server_created_at %d", rows, c.ID, c.CreatedAt.UnixMilli())
	}

	// A device's created_at and updated_at (set by WatermelonDB) are its own:
	// accepted, named in _changed or not, and never written on the server.
	deviceTime := float64(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	res := f.push(t, got.Timestamp, map[string]watermelon.PushTable{"customers": {
		Created: []map[string]any{{"id": "dev-1", "name": "Made offline", "created_at": deviceTime, "updated_at": deviceTime, "_status": "created", "_changed": ""}},
		Updated: []map[string]any{{"id": c.ID, "title": "CEO", "updated_at": deviceTime, "_status": "updated", "_changed": "title,updated_at"}},
	}})
	if !slices.Equal(sorted(res.Accepted["customers"]...), sorted("dev-1", c.ID)) {
		t.Fatalf("push with WatermelonDB's times: %+v", res)
	}
	for _, id := range []string{"dev-1", c.ID} {
		stored, err := f.svc.Customers.Get(context.Background(), f.desk, id)
		if err != nil {
			t.Fatal(err)
		}
		if stored.CreatedAt.Year() == 2001 || stored.UpdatedAt.Year() == 2001 {
			t.Fatalf("%s took the device's times: created %v, updated %v", id, stored.CreatedAt, stored.UpdatedAt)
		}
	}
}
