package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// TestAuditEntryJSONKeepsItsShape pins what GET /v1/audit sends for an
// entry: the tenant never, changes as null when an entry has none listed.
func TestAuditEntryJSONKeepsItsShape(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	cases := []struct {
		name  string
		entry models.AuditEntry
		want  string
	}{
		{"an update", models.AuditEntry{ID: "customers/c1/2", TenantID: "t1", Collection: "customers", RecordID: "c1",
			Version: 2, Action: "update", ActorID: "u1", At: at,
			Changes: []models.FieldChange{{Field: "name", Old: "Ann", New: "Anna"}, {Field: "tags", Old: nil, New: []any{"vip"}}}},
			`{"id":"customers/c1/2","collection":"customers","record_id":"c1","version":2,"action":"update","actor_id":"u1",` +
				`"at":"2026-03-01T09:30:00Z","changes":[{"field":"name","old":"Ann","new":"Anna"},{"field":"tags","old":null,"new":["vip"]}]}`},
		{"no changes listed", models.AuditEntry{ID: "exports/e1/1", TenantID: "t1", Collection: "exports", RecordID: "e1",
			Version: 1, Action: "export customers", ActorID: "u1", At: at},
			`{"id":"exports/e1/1","collection":"exports","record_id":"e1","version":1,"action":"export customers","actor_id":"u1",` +
				`"at":"2026-03-01T09:30:00Z","changes":null}`},
		{"an empty list", models.AuditEntry{ID: "tasks/k1/3", Collection: "tasks", RecordID: "k1", Version: 3, Action: "resend",
			At: at, Changes: []models.FieldChange{}},
			`{"id":"tasks/k1/3","collection":"tasks","record_id":"k1","version":3,"action":"resend","actor_id":"",` +
				`"at":"2026-03-01T09:30:00Z","changes":[]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := json.Marshal(auditEntryOf(c.entry))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("audit entry JSON\n got %s\nwant %s", got, c.want)
			}
		})
	}
}
