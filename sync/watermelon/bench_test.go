package watermelon_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// BenchmarkPushCreates pushes customers created offline, 500 a push, each
// with a phone and an e-mail of its own and one phone in ten shared (so some
// are flagged duplicates), as a rep's first sync after a day of cold calls.
// It reports customers created a second.
func BenchmarkPushCreates(b *testing.B) {
	f := newFixture(b, 500)
	const perPush = 500
	n := 0
	cursor := f.pull(b, 0, nil).Timestamp
	b.ResetTimer()
	for range b.N {
		rows := make([]map[string]any, perPush)
		for i := range rows {
			n++
			phone := fmt.Sprintf("+86138%08d", n)
			if n%10 == 0 {
				phone = "+8613900000000"
			}
			rows[i] = map[string]any{"id": models.NewID(), "name": fmt.Sprintf("客户 %d", n),
				"phones": fmt.Sprintf(`[{"number":%q}]`, phone), "emails": fmt.Sprintf(`[{"address":"c%d@example.com"}]`, n)}
		}
		res, err := f.engine.Push(context.Background(), f.phone, cursor, watermelon.PushRequest{Changes: map[string]watermelon.PushTable{"customers": {Created: rows}}})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Rejected) > 0 {
			b.Fatalf("rejected: %v", res.Rejected)
		}
	}
	b.ReportMetric(float64(b.N*perPush)/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkFirstPull pulls, from nothing, a tenant of 2,000 customers with
// their phones, e-mails and addresses, and encodes each page as the API
// sends it (JSON, before compression). It reports records pulled a second.
func BenchmarkFirstPull(b *testing.B) {
	f := newFixture(b, 5000)
	const customers = 2000
	rows := make([]map[string]any, customers)
	for i := range rows {
		rows[i] = map[string]any{"id": models.NewID(), "name": fmt.Sprintf("上海华泰机械%d有限公司", i), "region": "华东", "stage": "prospect",
			"phones": fmt.Sprintf(`[{"number":"+86138%08d"}]`, i), "emails": fmt.Sprintf(`[{"address":"c%d@example.com"}]`, i),
			"address": `{"province":"上海","city":"上海","street":"浦东新区张江路 88 号"}`, "tags": `["vip","华东"]`}
	}
	for start := 0; start < customers; start += 500 {
		res, err := f.engine.Push(context.Background(), f.phone, f.pull(b, 0, nil).Timestamp,
			watermelon.PushRequest{Changes: map[string]watermelon.PushTable{"customers": {Created: rows[start : start+500]}}})
		if err != nil || len(res.Rejected) > 0 {
			b.Fatal(err, res.Rejected)
		}
	}
	b.ResetTimer()
	records := 0
	for range b.N {
		var from int64
		for {
			page := f.pull(b, from, nil)
			body, err := page.AppendJSON(nil)
			if err != nil {
				b.Fatal(err)
			}
			_ = body
			for _, t := range page.Changes {
				records += len(t.Created) + len(t.Updated)
			}
			from = page.Timestamp
			if !page.HasMore {
				break
			}
		}
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}
