package store_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/store"
)

// everyType holds a value of each BSON type fieldcrm stores, in the shapes
// that trip a converter: escapes and non-ASCII text, nulls, empty arrays,
// arrays of mixed values, sub-documents, int32 beside int64, fractional doubles, dates.
type everyType struct {
	models.Meta `bson:",inline"`
	Text        string             `bson:"text"`
	Small       int32              `bson:"small"`
	Big         int64              `bson:"big"`
	Ratio       float64            `bson:"ratio"`
	Flag        bool               `bson:"flag"`
	Nothing     *string            `bson:"nothing"`
	When        time.Time          `bson:"when"`
	Tags        []string           `bson:"tags"`
	NoTags      []string           `bson:"no_tags"`
	Nested      map[string]any     `bson:"nested"`
	Mixed       bson.A             `bson:"mixed"`
	OID         primitive.ObjectID `bson:"oid"`
	Bytes       []byte             `bson:"bytes"`
}

// The direct table reader must hand back exactly what FerretDB's own query
// answers, value for value and type for type, in the same order; and it must
// answer from the (tenant_id, seq) index, not by scanning.
func TestChangesFromTablesMatchTheQueryEngine(t *testing.T) {
	ctx := context.Background()
	direct := env.Store(t)
	cfg := env.StoreConfig(t)
	cfg.Database = direct.DatabaseName()
	cfg.Tables = nil
	viaQuery, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = viaQuery.Close(ctx) })

	when := time.Date(2026, 1, 5, 9, 30, 15, 123e6, time.UTC)
	insert := func(tenant string, seq int64, deleted bool) {
		t.Helper()
		m := models.Meta{ID: models.NewID(), TenantID: tenant, Version: 1, CreatedAt: when, UpdatedAt: when,
			Seq: seq, FieldSeqs: map[string]int64{"id": seq, "text": seq}}
		if deleted {
			d := when.Add(time.Hour)
			m.DeletedAt = &d
		}
		doc := everyType{Meta: m, Text: "quote \" back\\slash 中文\n\ttab", Small: -7, Big: 1 << 53, Ratio: 0.1 + float64(seq),
			Flag: seq%2 == 0, When: when, Tags: []string{"a", "b"}, NoTags: []string{},
			Nested: map[string]any{"city": "上海", "geo": bson.D{{Key: "lat", Value: 31.2}, {Key: "lng", Value: 121.5}}, "none": nil},
			Mixed:  bson.A{int32(1), "x", bson.D{{Key: "k", Value: false}, {Key: "empty", Value: bson.A{}}}, 2.5, when, nil},
			OID:    primitive.NewObjectID(), Bytes: []byte{0, 1, 254, 255}}
		if err := direct.Insert(ctx, store.Tasks, &m, doc, store.AuditEntry{Action: "create"}); err != nil {
			t.Fatal(err)
		}
	}
	for seq := int64(1); seq <= 6; seq++ {
		insert("t1", seq*10, seq == 3)
	}
	insert("t2", 25, false)

	read := func(st *store.Store, after, upTo int64, limit int) []bson.D {
		t.Helper()
		var out []bson.D
		if err := st.Changes(ctx, store.Tasks, "t1", after, upTo, limit, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	seqs := func(docs []bson.D) []int64 {
		var out []int64
		for _, d := range docs {
			out = append(out, d.Map()["seq"].(int64))
		}
		return out
	}
	for _, c := range []struct {
		after, upTo int64
		limit       int
		want        []int64
	}{
		{0, 100, 100, []int64{10, 20, 30, 40, 50, 60}},
		{10, 50, 100, []int64{20, 30, 40, 50}},
		{10, 50, 2, []int64{20, 30}},
		{60, 100, 100, nil},
	} {
		got, want := read(direct, c.after, c.upTo, c.limit), read(viaQuery, c.after, c.upTo, c.limit)
		if !reflect.DeepEqual(seqs(got), c.want) {
			t.Fatalf("(%d, %d] limit %d: direct read seqs %v, want %v", c.after, c.upTo, c.limit, seqs(got), c.want)
		}
		if (len(got) > 0 || len(want) > 0) && !reflect.DeepEqual(got, want) {
			t.Fatalf("(%d, %d]: direct read differs from the query engine:\n%v\n%v", c.after, c.upTo, got, want)
		}
	}

	var typed []everyType
	if err := direct.Changes(ctx, store.Tasks, "t1", 0, 20, 10, &typed); err != nil {
		t.Fatal(err)
	}
	if len(typed) != 2 || !typed[0].When.Equal(when) || typed[1].Nested["city"] != "上海" || typed[0].Text != "quote \" back\\slash 中文\n\ttab" {
		t.Fatalf("typed read: %+v", typed)
	}

	if env.SQLiteDir() != "" {
		plan, err := direct.ExplainChanges(ctx, store.Tasks)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "_fieldcrm_sync") || strings.Contains(plan, "TEMP B-TREE") {
			t.Fatalf("changes are not read from the (tenant_id, seq) index:\n%s", plan)
		}
	}
}
