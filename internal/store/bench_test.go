package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
)

// BenchmarkUserByID measures the lookup every authenticated request makes, on a
// users collection of 10,000 documents, with and without the embedded SQLite
// _id lookup index. Run: go test ./internal/store -run '^$' -bench UserByID -count 5
func BenchmarkUserByID(b *testing.B) {
	if env.SQLiteDir() == "" {
		b.Skip("measures the embedded SQLite backend")
	}
	ctx := context.Background()
	st := env.Store(b)
	const users = 10000
	ids := make([]string, users)
	for i := range ids {
		u := newUser("t1", fmt.Sprintf("u%d@example.com", i))
		ids[i] = u.ID
		if err := st.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	lookup := func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := st.User(ctx, "t1", ids[(i*7919)%users]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("indexed", lookup)
	if err := embedded.DropIDLookupIndexes(ctx, env.SQLiteDir(), st.DatabaseName()); err != nil {
		b.Fatal(err)
	}
	b.Run("scan", lookup)
}
