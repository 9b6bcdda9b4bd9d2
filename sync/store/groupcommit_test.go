package store_test

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/embedded"
	"github.com/fieldcrm/fieldcrm/sync/store"
)

// Callers writing at the same moment share one transaction (see
// embedded/groupcommit.go and, on PostgreSQL, embedded/pgpipeline.go), yet each caller's writes stay all or nothing: a
// caller whose second write is refused leaves nothing of its first, and the
// others' writes are kept.
func TestConcurrentDirectWritesStayAllOrNothing(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	cfg := env.StoreConfigFor(t, st.DatabaseName())
	if cfg.ByID == nil {
		t.Skip("no direct writes on this engine")
	}
	doc := func(id string, n int) bson.Raw {
		raw, err := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "tenant_id", Value: "t1"}, {Key: "n", Value: n}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if err := cfg.ByID.Write(ctx, embedded.DocWrite{Coll: store.Tasks, Doc: doc("taken", 0)}); err != nil {
		t.Fatal(err)
	}
	const callers = 90
	errs := make([]error, callers)
	var wg gosync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writes := []embedded.DocWrite{{Coll: store.Tasks, Doc: doc(fmt.Sprint("own-", i), i)}}
			switch i % 3 {
			case 1: // an insert of an existing _id: refused
				writes = append(writes, embedded.DocWrite{Coll: store.Tasks, Doc: doc("taken", i)})
			case 2: // a replace of a missing one: refused
				writes = append(writes, embedded.DocWrite{Coll: store.Tasks, Doc: doc(fmt.Sprint("missing-", i), i), Replace: true})
			}
			errs[i] = cfg.ByID.Write(ctx, writes...)
		}()
	}
	wg.Wait()
	for i := range callers {
		_, err := cfg.ByID.Get(ctx, store.Tasks, fmt.Sprint("own-", i))
		if i%3 == 0 {
			if errs[i] != nil || err != nil {
				t.Errorf("caller %d: write %v, read back %v", i, errs[i], err)
			}
			continue
		}
		if !errors.Is(errs[i], models.ErrConflict) || !errors.Is(err, models.ErrNotFound) {
			t.Errorf("caller %d, refused: write %v, its first document read back %v", i, errs[i], err)
		}
	}
	raw, err := cfg.ByID.Get(ctx, store.Tasks, "taken")
	if err != nil || raw.Lookup("n").Int32() != 0 {
		t.Fatalf("the document every refused insert aimed at: %v, %v", raw, err)
	}
}
