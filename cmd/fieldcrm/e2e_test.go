package main

import (
	"context"
	"testing"
	"time"
)

// TestWatermelonDBClientEndToEnd runs sync/watermelon/e2e/sync.test.js: phones
// with the real WatermelonDB library (LokiJS adapter, in Node) syncing through
// `fieldcrm serve`: offline creates, server-assigned numbers, merged and
// conflicting edits, a delete, a push whose response was lost, a resync,
// records of every synced table made on a phone and through the REST API, a
// first sync of many records, and an app upgrade that migrates its schema.
// It runs twice: with the default page size, and with pages of 3 records, so
// every sync pages and the client's paging (synchronize() again while
// has_more) is what brings everything. It needs Node and `npm ci` in that
// folder; .ci/run does both and sets FIELDCRM_E2E=1, which turns a missing
// prerequisite into a failure instead of a skip.
func TestWatermelonDBClientEndToEnd(t *testing.T) {
	dir, node := nodePackage(t, "../../sync/watermelon/e2e", "node", "@nozbe/watermelondb")
	for _, pageSize := range []string{"", "3"} {
		name := "default pages"
		if pageSize != "" {
			name = pageSize + " records a page"
		}
		t.Run(name, func(t *testing.T) {
			vars := isolatedVars(t, "e2e")
			if pageSize != "" {
				vars["FIELDCRM_SYNC_PAGE_SIZE"] = pageSize
			}
			p := startServe(t, vars)
			defer p.stop(t)

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			out := runAgainstServe(ctx, t, p, dir, []string{"FIELDCRM_SYNC_PAGE_SIZE=" + pageSize}, node, "sync.test.js")
			t.Logf("%s", lastLine(out))
		})
	}
}

func lastLine(b []byte) string {
	for len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			return string(b[i+1:])
		}
	}
	return string(b)
}
