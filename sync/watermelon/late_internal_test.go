package watermelon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// TestLateRecordsAreNotSentTwice: a record changed between a round's query
// and its query of late records is found by both; the response names it once.
func TestLateRecordsAreNotSentTwice(t *testing.T) {
	all := []change{{table: "customers", id: "a", seq: 5}, {table: "tasks", id: "b", seq: 6}}
	late := []change{{table: "customers", id: "a", seq: 9}, {table: "customers", id: "b", seq: 10}}
	got := withLate(all, late)
	var names []string
	for _, c := range got {
		names = append(names, fmt.Sprintf("%s/%s@%d", c.table, c.id, c.seq))
	}
	if want := "customers/a@5 tasks/b@6 customers/b@10"; strings.Join(names, " ") != want {
		t.Fatalf("got %v, want %s", names, want)
	}
}

// TestLateRecordsChangedAgainComeOnce: a record changed again while the late
// records are read, a page at a time, is on two of their pages.
func TestLateRecordsChangedAgainComeOnce(t *testing.T) {
	late := []change{{table: "customers", id: "a", seq: 9}, {table: "customers", id: "b", seq: 10}, {table: "customers", id: "a", seq: 11}}
	got := withLate(nil, late)
	if len(got) != 2 || got[0].id != "a" || got[1].id != "b" {
		t.Fatalf("got %v, want a and b once each", got)
	}
}

// pagedTable serves fixed changes a page at a time: the records up to the
// watermark, and the late ones above it (where a record changed twice is on
// two pages).
type pagedTable struct {
	upTo       int64
	read, late []change
}

func (p *pagedTable) schema() Table { return Table{Name: "customers"} }

func (p *pagedTable) changes(_ context.Context, _ models.Actor, after, upTo int64, limit int, _ crm.Narrowing) ([]change, error) {
	from := p.read
	if upTo > p.upTo {
		from = p.late
	}
	var out []change
	for _, c := range from {
		if c.seq > after && c.seq <= upTo && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

func (p *pagedTable) push(context.Context, models.Actor, pushCursor, PushTable, int, *PushResult) error {
	return nil
}

// TestWholeFirstSyncSendsALateRecordOnce: in a whole first sync, a late
// record found on two pages of the late read is sent once.
func TestWholeFirstSyncSendsALateRecordOnce(t *testing.T) {
	rec := func(id string, seq int64) change {
		return change{table: "customers", id: id, seq: seq, createdSeq: 1, record: map[string]any{"id": id, "v": seq}}
	}
	paged := &pagedTable{upTo: 10,
		read: []change{rec("r1", 1), rec("r2", 2), rec("r3", 3)},
		late: []change{rec("x", 11), rec("y", 12), rec("x", 13)}}
	whole := WholeFirstSync{e: &Engine{tables: []table{paged}, pageSize: 2}, upTo: 10}
	var body bytes.Buffer
	n, err := whole.Send(context.Background(), &body)
	if err != nil {
		t.Fatal(err)
	}
	var got PullResult
	if err := json.Unmarshal(body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, body.Bytes())
	}
	var ids []string
	for _, r := range got.Changes["customers"].Created {
		ids = append(ids, r["id"].(string))
	}
	if strings.Join(ids, " ") != "r1 r2 r3 x y" || n != 5 {
		t.Fatalf("sent %v (%d), want r1 r2 r3 x y", ids, n)
	}
}
