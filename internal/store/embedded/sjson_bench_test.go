package embedded

import (
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
)

// A customer as the CRM stores it (about sixty fields, arrays and nested
// objects), read back from its stored form: the cost every list page,
// export, sync pull and report pays per record on the embedded engines.
//
//	go test -run '^$' -bench StoredForm -count 5 ./internal/store/embedded/
func BenchmarkStoredFormToBSON(b *testing.B) {
	text, err := bsonToSJSON(sampleCustomer(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		schemas *schemaCache
	}{{"parse each schema", nil}, {"schema cache", &schemaCache{}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := sjsonToBSON(text, c.schemas); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func sampleCustomer(b *testing.B) bson.Raw {
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	seqs, devices := bson.D{}, bson.D{}
	fields := bson.D{{Key: "_id", Value: "c0000000000000000001"}, {Key: "tenant_id", Value: "t0000000000000000001"}}
	for i := range 40 {
		name := fmt.Sprintf("field_%02d", i)
		fields = append(fields, bson.E{Key: name, Value: fmt.Sprintf("值 %d of a customer", i)})
		seqs = append(seqs, bson.E{Key: name, Value: int64(1000 + i)})
		devices = append(devices, bson.E{Key: name, Value: "device-1"})
	}
	fields = append(fields,
		bson.E{Key: "tags", Value: bson.A{"vip", "华东", "key account"}},
		bson.E{Key: "search_keys", Value: bson.A{"13800012345", "客户12345", "acme trading", "wx_abc", "c-2026-0001"}},
		bson.E{Key: "loyalty", Value: bson.D{{Key: "balance", Value: int64(390)}, {Key: "tier", Value: "gold"}}},
		bson.E{Key: "created_at", Value: at}, bson.E{Key: "updated_at", Value: at},
		bson.E{Key: "version", Value: int64(7)}, bson.E{Key: "seq", Value: int64(123456)},
		bson.E{Key: "field_seqs", Value: seqs}, bson.E{Key: "field_devices", Value: devices})
	raw, err := bson.Marshal(fields)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}
