package watermelon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// plainResult is PullResult without its methods: encoding/json's form.
type plainResult watermelon.PullResult

// A pull's body is written byte for byte as encoding/json writes it: a real
// page of records holding escapes, numbers, times, JSON columns and nulls,
// a page with a deletion, and the shapes a hand-written encoder gets wrong
// (nil maps, slices and tables).
func TestPullBodiesAreWhatEncodingJSONWrites(t *testing.T) {
	f := newFixture(t, 50)
	rows := []map[string]any{
		{"id": models.NewID(), "name": `上海 "华泰" <机械> & Co\`, "region": "华东", "stage": "prospect", "tags": `["vip","\u2028"]`,
			"phones": `[{"number":"+86 138 0000 0000"}]`, "address": `{"province":"上海","street":"张江路 88 号"}`},
		{"id": models.NewID(), "name": "Line\nbreak\ttab \x01", "stage": "customer", "value_tier": "loyal"},
		{"id": models.NewID(), "name": "Plain"},
	}
	res := f.push(t, f.pull(t, 0, nil).Timestamp, map[string]watermelon.PushTable{"customers": {Created: rows}})
	if len(res.Rejected) > 0 {
		t.Fatal(res.Rejected)
	}
	first := f.pull(t, 0, nil)
	if got := len(first.Changes["customers"].Created); got != len(rows) {
		t.Fatalf("pulled %d customers, pushed %d", got, len(rows))
	}
	deleted := f.pull(t, 0, nil)
	deleted.Changes["customers"].Deleted = append(deleted.Changes["customers"].Deleted, "gone-1", "<gone>")
	odd := watermelon.PullResult{Changes: map[string]*watermelon.TableChanges{
		"customers": {Created: []map[string]any{nil, {}, {"n": 1e21, "small": 1.5e-7, "int": int64(-3), "b": false, "x": nil}}},
		"tasks":     nil,
		"visits":    {},
	}, Timestamp: -1, HasMore: true}
	for i, page := range []watermelon.PullResult{first, deleted, odd, {}} {
		got, err := page.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(plainResult(page))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Fatalf("page %d written as\n%s\nencoding/json writes\n%s", i, got[len("prefix"):], want)
		}
	}
	bad := watermelon.PullResult{Changes: map[string]*watermelon.TableChanges{"customers": {Created: []map[string]any{{"f": func() {}}}}}}
	if _, err := bad.AppendJSON(nil); err == nil {
		t.Fatal("a value encoding/json refuses was written")
	}
}

// BenchmarkPullBody writes a page of 2,000 pulled customers, through
// encoding/json and by AppendJSON (what the API sends), side by side.
func BenchmarkPullBody(b *testing.B) {
	f := newFixture(b, 5000)
	rows := make([]map[string]any, 2000)
	for i := range rows {
		rows[i] = map[string]any{"id": models.NewID(), "name": fmt.Sprintf("上海华泰机械%d有限公司", i), "region": "华东", "stage": "prospect",
			"phones": fmt.Sprintf(`[{"number":"+86138%08d"}]`, i), "emails": fmt.Sprintf(`[{"address":"c%d@example.com"}]`, i),
			"address": `{"province":"上海","city":"上海","street":"浦东新区张江路 88 号"}`, "tags": `["vip","华东"]`}
	}
	if _, err := f.engine.Push(context.Background(), f.phone, f.pull(b, 0, nil).Timestamp,
		watermelon.PushRequest{Changes: map[string]watermelon.PushTable{"customers": {Created: rows}}}); err != nil {
		b.Fatal(err)
	}
	page := f.pull(b, 0, nil)
	b.Run("encoding/json", func(b *testing.B) {
		for range b.N {
			if _, err := json.Marshal(plainResult(page)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		for range b.N {
			if _, err := page.AppendJSON(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
