package testenv

import (
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// Field is a (dotted) field of a decoded record, nil when missing; dates as
// time.Time in UTC, 32-bit integers as int64, as tests compare them with
// what the store's tallies return.
func Field(doc bson.M, field string) any {
	var v any = doc
	for _, part := range strings.Split(field, ".") {
		m, ok := v.(bson.M)
		if !ok {
			return nil
		}
		v = m[part]
	}
	switch x := v.(type) {
	case primitive.DateTime:
		return x.Time().UTC()
	case int32:
		return int64(x)
	}
	return v
}
