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
