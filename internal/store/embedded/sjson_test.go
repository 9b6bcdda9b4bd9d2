package embedded

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// Every type fieldcrm stores survives the trip to the stored form and back,
// also when the text comes back with PostgreSQL's spacing; a cut-off text is
// an error, never a panic.
func TestStoredFormRoundTrip(t *testing.T) {
	oid := primitive.NewObjectID()
	docs := []bson.D{
		{{Key: "_id", Value: "plain"}},
		{
			{Key: "_id", Value: `id "quoted" \ back`},
			{Key: "name", Value: "Zhāng 张伟 <b>&</b>\n\ttab"},
			{Key: "count", Value: int32(-7)},
			{Key: "seq", Value: int64(1) << 50},
			{Key: "ratio", Value: 0.1},
			{Key: "big", Value: 1e21},
			{Key: "ok", Value: true},
			{Key: "no", Value: false},
			{Key: "none", Value: nil},
			{Key: "at", Value: primitive.NewDateTimeFromTime(time.Date(2026, 12, 2, 9, 5, 0, 0, time.UTC))},
			{Key: "oid", Value: oid},
			{Key: "bin", Value: primitive.Binary{Subtype: 0, Data: []byte{0, 1, 2, 250}}},
			{Key: "empty_doc", Value: bson.D{}},
			{Key: "empty_list", Value: bson.A{}},
			{Key: "phones", Value: bson.A{
				bson.D{{Key: "label", Value: "office"}, {Key: "number", Value: "+862088886666"}},
				bson.D{{Key: "label", Value: "mobile, [main]"}, {Key: "number", Value: "{x}"}},
			}},
			{Key: "mixed", Value: bson.A{"a", int64(2), 3.5, nil, bson.A{true}, bson.D{{Key: "k", Value: bson.D{{Key: "deep", Value: "v"}}}}}},
			{Key: "key with \"quote\"", Value: "x"},
		},
	}
	for _, d := range docs {
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		text, err := bsonToSJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		var spaced bytes.Buffer
		if err := json.Indent(&spaced, text, "", "  "); err != nil {
			t.Fatal(err)
		}
		for _, form := range [][]byte{text, spaced.Bytes()} {
			back, err := sjsonToBSON(form, nil)
			if err != nil {
				t.Fatalf("read back %s: %v", form, err)
			}
			if !bytes.Equal(back, raw) {
				t.Fatalf("round trip of %s\n got %v\nwant %v", form, bson.Raw(back), bson.Raw(raw))
			}
		}
		for n := range len(text) {
			if _, err := sjsonToBSON(text[:n], nil); err == nil {
				t.Fatalf("a text cut off after %d bytes was read: %s", n, text[:n])
			}
		}
	}
}

// A pull's read keeps, of the top-level per-field maps, the id's members
// alone; the rest of the document, nested maps of the same name included,
// is converted whole.
func TestPulledMapsKeepTheIdsMembers(t *testing.T) {
	doc := bson.D{
		{Key: "_id", Value: "c1"},
		{Key: "field_devices", Value: bson.D{{Key: "id", Value: "phone-1"}, {Key: "name", Value: "phone-2"}}},
		{Key: "field_seqs", Value: bson.D{{Key: "address", Value: int64(9)}, {Key: "id", Value: int64(4)}, {Key: "name", Value: int64(7)}}},
		{Key: "name", Value: "上海华泰"},
		{Key: "nested", Value: bson.D{{Key: "field_seqs", Value: bson.D{{Key: "id", Value: int64(1)}, {Key: "x", Value: int64(2)}}}}},
	}
	want := bson.D{
		{Key: "_id", Value: "c1"},
		{Key: "field_devices", Value: bson.D{{Key: "id", Value: "phone-1"}}},
		{Key: "field_seqs", Value: bson.D{{Key: "id", Value: int64(4)}}},
		{Key: "name", Value: "上海华泰"},
		{Key: "nested", Value: bson.D{{Key: "field_seqs", Value: bson.D{{Key: "id", Value: int64(1)}, {Key: "x", Value: int64(2)}}}}},
	}
	noID := bson.D{{Key: "_id", Value: "c2"}, {Key: "field_seqs", Value: bson.D{{Key: "name", Value: int64(3)}}}, {Key: "field_devices", Value: nil}}
	wantNoID := bson.D{{Key: "_id", Value: "c2"}, {Key: "field_seqs", Value: bson.D{}}, {Key: "field_devices", Value: nil}}
	for _, c := range []struct{ doc, want bson.D }{{doc, want}, {noID, wantNoID}} {
		raw, err := bson.Marshal(c.doc)
		if err != nil {
			t.Fatal(err)
		}
		wantRaw, err := bson.Marshal(c.want)
		if err != nil {
			t.Fatal(err)
		}
		text, err := bsonToSJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sjsonToBSONKeeping(text, nil, pulledMaps())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, wantRaw) {
			t.Fatalf("read for a pull\n got %v\nwant %v", got, bson.Raw(wantRaw))
		}
	}
}

// Once a schema has been read, a document starting with it is found by
// looking its text up (schemaCache.leading), in the form written here and
// in PostgreSQL's spacing; a guess that ends inside the schema finds
// nothing, and every form reads back the same either way.
func TestKnownSchemasAreFoundWithoutScanning(t *testing.T) {
	plain := bson.D{
		{Key: "_id", Value: "c1"},
		{Key: "name", Value: "上海华泰"},
		{Key: "tags", Value: bson.A{"vip", "华东"}},
		{Key: "address", Value: bson.D{{Key: "city", Value: "上海"}}},
		{Key: "seq", Value: int64(7)},
	}
	// The _id of a nested object, after an array: the guessed end of the
	// schema is inside it.
	misleading := bson.D{
		{Key: "_id", Value: "c2"},
		{Key: "line", Value: bson.D{{Key: "list", Value: bson.A{"v"}}, {Key: "_id", Value: "n1"}}},
	}
	pgSpacing := strings.NewReplacer(`":`, `": `, `,"`, `, "`)
	for _, c := range []struct {
		doc   bson.D
		found bool
	}{{plain, true}, {misleading, false}} {
		raw, err := bson.Marshal(c.doc)
		if err != nil {
			t.Fatal(err)
		}
		text, err := bsonToSJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range [][]byte{text, []byte(pgSpacing.Replace(string(text)))} {
			schemas := &schemaCache{}
			if s, _ := schemas.leading(form); s != nil {
				t.Fatalf("a schema was found before any was read: %s", form)
			}
			for read := range 2 {
				back, err := sjsonToBSON(form, schemas)
				if err != nil || !bytes.Equal(back, raw) {
					t.Fatalf("read %d of %s: got %v (%v), want %v", read, form, bson.Raw(back), err, bson.Raw(raw))
				}
			}
			s, end := schemas.leading(form)
			if (s != nil) != c.found {
				t.Fatalf("schema of %s found: %v, want %v", form, s != nil, c.found)
			}
			if s != nil && !bytes.HasPrefix(bytes.TrimLeft(form[end:], ", "), []byte(`"_id"`)) {
				t.Fatalf("the schema of %s was taken to end before %q", form, form[end:])
			}
		}
	}
}
