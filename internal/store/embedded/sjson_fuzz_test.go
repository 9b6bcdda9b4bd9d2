package embedded

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// Any document of the types fieldcrm stores comes back from its stored form
// byte for byte.
func FuzzStoredFormRoundTrip(f *testing.F) {
	f.Add("name", "张伟 <b>&</b>\n", int64(1)<<50, 0.1, true, []byte{0, 250}, int64(1767225600000))
	f.Add("", "", int64(0), math.Copysign(0, -1), false, []byte{}, int64(-1))
	f.Add("k\"ey", "\u2028", int64(math.MinInt64), 1e21, true, []byte(nil), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, key, s string, n int64, x float64, b bool, bin []byte, at int64) {
		// FerretDB refuses keys that start with $ (its own "$s"), and invalid
		// UTF-8 is stored as U+FFFD, as encoding/json writes it.
		if strings.HasPrefix(key, "$") || !utf8.ValidString(key) || !utf8.ValidString(s) ||
			math.IsNaN(x) || math.IsInf(x, 0) || key == "_id" || strings.ContainsRune(key, 0) {
			return
		}
		d := bson.D{
			{Key: "_id", Value: s},
			{Key: key, Value: s},
			{Key: key + "n", Value: n},
			{Key: key + "i", Value: int32(n)},
			{Key: key + "x", Value: x},
			{Key: key + "b", Value: b},
			{Key: key + "bin", Value: primitive.Binary{Data: bin}},
			{Key: key + "at", Value: primitive.DateTime(at)},
			{Key: key + "doc", Value: bson.D{{Key: key, Value: bson.A{s, n, x, nil, bson.D{}}}}},
		}
		raw, err := bson.Marshal(d)
		if err != nil {
			return // a key the driver cannot write
		}
		text, err := bsonToSJSON(raw)
		if err != nil {
			t.Fatalf("store %v: %v", bson.Raw(raw), err)
		}
		back, err := sjsonToBSON(text, nil)
		if err != nil {
			t.Fatalf("read back %s: %v", text, err)
		}
		if !bytes.Equal(back, raw) {
			t.Fatalf("round trip of %s\n got %v\nwant %v", text, bson.Raw(back), bson.Raw(raw))
		}
	})
}

// Any text, however broken, is read as a valid document or refused with an
// error, the same with the schema cache as without; what is read is stored
// and read again unchanged.
func FuzzStoredFormScanner(f *testing.F) {
	f.Add([]byte(`{"$s":{"p":{"_id":{"t":"string"},"at":{"t":"date"}},"$k":["_id","at"]},"_id":"a1","at":1767225600000}`))
	f.Add([]byte(`{"$s":{"p":{"a":{"t":"array","i":[{"t":"object","$s":{"p":{"k":{"t":"int"}},"$k":["k"]}}]}},"$k":["a"]},"a":[{"k":1}]}`))
	f.Add([]byte(`{"$s":{"p":{"b":{"t":"binData","s":0}},"$k":["b"]},"b":"AAH6"}`))
	f.Add([]byte(`{"$s":{"p":{"x":{"t":"double"}},"$k":["x","x"]},"x":1e400}`))
	f.Add([]byte(`{"$s":{"p":{},"$k":["missing"]}}`))
	f.Add([]byte(`{"$s":`))
	f.Add([]byte(`{"$s": {"p": {"_id": {"t": "string"}}, "$k": ["_id"]}, "_id": "a1"}`))
	f.Add([]byte(`{"$s":{"p":{"_id":{"t":"string"}},"$k":["_id"]},"_id":"a1","$s":{"p":{"_id":{"t":"int"}},"$k":["_id"]}}`))
	// One cache across the inputs, as a reader keeps it: a schema parsed
	// for one text must read every other text with the same schema alike.
	schemas := &schemaCache{}
	f.Fuzz(func(t *testing.T, text []byte) {
		doc, err := sjsonToBSON(text, nil)
		// Twice with the cache: the second read finds a schema the
		// first parsed by its text (schemaCache.leading).
		for range 2 {
			cached, cerr := sjsonToBSON(text, schemas)
			if (err == nil) != (cerr == nil) || !bytes.Equal(doc, cached) {
				t.Fatalf("%s read without the schema cache as %v (%v), with it as %v (%v)", text, doc, err, bson.Raw(cached), cerr)
			}
		}
		if err != nil {
			return
		}
		if err := doc.Validate(); err != nil {
			t.Fatalf("sjsonToBSON(%s) gave invalid BSON: %v", text, err)
		}
		again, err := bsonToSJSON(doc)
		if err != nil {
			return // a value the writer refuses, such as a non-finite double
		}
		back, err := sjsonToBSON(again, nil)
		if err != nil {
			t.Fatalf("read back %s (from %s): %v", again, text, err)
		}
		if !bytes.Equal(back, doc) {
			t.Fatalf("%s read as %v, stored as %s, read again as %v", text, doc, again, bson.Raw(back))
		}
	})
}
