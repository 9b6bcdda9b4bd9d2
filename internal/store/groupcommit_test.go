package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/models"
)

// Callers writing at the same moment share one transaction (see
// embedded/groupcommit.go and, on PostgreSQL, embedded/pgpipeline.go), yet
// each caller's writes stay all or nothing: a caller whose second write is
// refused leaves nothing of its first, and the others' writes are kept.
func TestConcurrentDirectWritesStayAllOrNothing(t *testing.T) {
	ctx := context.Background()
	_, tables := directTables(t)
	if err := tables.Write(ctx, embedded.DocWrite{Coll: store.Tasks, Doc: taskDoc(t, "taken", 0)}); err != nil {
		t.Fatal(err)
	}
	const callers = 90
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writes := []embedded.DocWrite{{Coll: store.Tasks, Doc: taskDoc(t, fmt.Sprint("own-", i), i)}}
			switch i % 3 {
			case 1: // an insert of an existing _id: refused
				writes = append(writes, embedded.DocWrite{Coll: store.Tasks, Doc: taskDoc(t, "taken", i)})
			case 2: // a replace of a missing one: refused
				writes = append(writes, embedded.DocWrite{Coll: store.Tasks, Doc: taskDoc(t, fmt.Sprint("missing-", i), i), Replace: true})
			}
			errs[i] = tables.Write(ctx, writes...)
		}()
	}
	wg.Wait()
	for i := range callers {
		_, err := tables.Get(ctx, store.Tasks, fmt.Sprint("own-", i))
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
	raw, err := tables.Get(ctx, store.Tasks, "taken")
	if err != nil || raw.Lookup("n").Int32() != 0 {
		t.Fatalf("the document every refused insert aimed at: %v, %v", raw, err)
	}
}

// A caller's many inserts go to SQLite many rows a statement; a batch with
// one refused row among them still stores none of them, and a batch
// without stores every one.
func TestABatchOfManyInsertsIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	_, tables := directTables(t)
	if err := tables.Write(ctx, embedded.DocWrite{Coll: store.Tasks, Doc: taskDoc(t, "taken", 0)}); err != nil {
		t.Fatal(err)
	}
	batch := func(name string, n, refused int) []embedded.DocWrite {
		var writes []embedded.DocWrite
		for i := range n {
			id := fmt.Sprintf("%s-%03d", name, i)
			if i == refused {
				id = "taken"
			}
			writes = append(writes, embedded.DocWrite{Coll: store.Tasks, Doc: taskDoc(t, id, i)})
		}
		return writes
	}
	if err := tables.Write(ctx, batch("refused", 150, 100)...); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("a batch with an existing _id: %v", err)
	}
	for _, id := range []string{"refused-000", "refused-063", "refused-064", "refused-149"} {
		if _, err := tables.Get(ctx, store.Tasks, id); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("%s of the refused batch: %v", id, err)
		}
	}
	if err := tables.Write(ctx, batch("kept", 150, -1)...); err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		if raw, err := tables.Get(ctx, store.Tasks, fmt.Sprintf("kept-%03d", i)); err != nil || raw.Lookup("n").Int32() != int32(i) {
			t.Fatalf("kept-%03d: %v, %v", i, raw, err)
		}
	}
}

// Reads by _id asked for at the same moment share one round trip on
// PostgreSQL (embedded/pgreads.go): each caller still gets its own document,
// a missing one is models.ErrNotFound, and a read that fails in the middle
// of a pipeline (here: of a collection dropped behind the table cache's
// back) does not take the reads after it down with it.
func TestConcurrentReadsByIDEachGetTheirOwn(t *testing.T) {
	ctx := context.Background()
	st, tables := directTables(t)
	const stored, missing = 150, 50
	for i := range stored {
		if err := tables.Write(ctx, embedded.DocWrite{Coll: store.Tasks, Doc: taskDoc(t, fmt.Sprint("doc-", i), i)}); err != nil {
			t.Fatal(err)
		}
	}
	db := ferretDB(t, st.DatabaseName())
	for round := range 5 {
		doomed := fmt.Sprint("doomed_", round)
		if _, err := db.Collection(doomed).InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := tables.Get(ctx, doomed, "x"); err != nil { // its table is now cached
			t.Fatal(err)
		}
		if err := db.Collection(doomed).Drop(ctx); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range stored + missing {
			wg.Add(2)
			go func() {
				defer wg.Done()
				raw, err := tables.Get(ctx, store.Tasks, fmt.Sprint("doc-", i))
				switch {
				case i >= stored && !errors.Is(err, models.ErrNotFound):
					t.Errorf("round %d, missing doc-%d: %v, %v", round, i, raw, err)
				case i < stored && (err != nil || raw.Lookup("n").Int32() != int32(i)):
					t.Errorf("round %d, doc-%d: %v, %v", round, i, raw, err)
				}
			}()
			go func() {
				defer wg.Done()
				if raw, err := tables.Get(ctx, doomed, "x"); !errors.Is(err, models.ErrNotFound) {
					t.Errorf("round %d, a dropped collection's document: %v, %v", round, raw, err)
				}
			}()
		}
		wg.Wait()
	}
}

// The same for writes: a write to a collection dropped behind the table
// cache's back fails on its own, and the writes it shared a transaction with
// are made (on PostgreSQL pgx could not prepare the pipeline; the connection
// it left with half-known statements must not be used again).
func TestConcurrentWritesBesideADroppedCollection(t *testing.T) {
	ctx := context.Background()
	st, tables := directTables(t)
	db := ferretDB(t, st.DatabaseName())
	for round := range 4 {
		doomed := db.Collection(fmt.Sprint("doomed_w", round))
		if _, err := doomed.InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := tables.Get(ctx, doomed.Name(), "x"); err != nil { // its table is now cached
			t.Fatal(err)
		}
		if err := doomed.Drop(ctx); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 60 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				id := fmt.Sprint("w", round, "-", i)
				if err := tables.Write(ctx, embedded.DocWrite{Coll: store.Tasks, Doc: taskDoc(t, id, i)}); err != nil {
					t.Errorf("write %s: %v", id, err)
				}
			}()
			go func() {
				defer wg.Done()
				_ = tables.Write(ctx, embedded.DocWrite{Coll: doomed.Name(), Doc: taskDoc(t, fmt.Sprint("y", i), i)})
			}()
		}
		wg.Wait()
		for i := range 60 {
			if _, err := tables.Get(ctx, store.Tasks, fmt.Sprint("w", round, "-", i)); err != nil {
				t.Errorf("read back w%d-%d: %v", round, i, err)
			}
		}
	}
}

// directTables returns a new store and its direct reads and writes, or skips
// the test on an engine without them.
func directTables(t *testing.T) (*store.Store, store.IDTables) {
	st := env.Store(t)
	cfg := env.StoreConfigFor(t, st.DatabaseName())
	if cfg.ByID == nil {
		t.Skip("no direct reads and writes on this engine")
	}
	return st, cfg.ByID
}

// ferretDB connects to database name through FerretDB, around the store.
func ferretDB(t *testing.T, name string) *mongo.Database {
	client, err := mongo.Connect(context.Background(), options.Client().ApplyURI(env.MongoURI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(name)
}

// taskDoc is a minimal task document.
func taskDoc(t *testing.T, id string, n int) bson.Raw {
	raw, err := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "tenant_id", Value: "t1"}, {Key: "n", Value: n}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
