package embedded

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/x/bsonx/bsoncore"
)

// FerretDB v1.24 stores each document as one JSON text (SQLite column
// _ferretdb_sjson, PostgreSQL column _jsonb) in its "sjson" form: the fields as
// plain JSON, plus a "$s" schema that keeps what JSON loses (the BSON type of
// each value and the order of the keys):
//
//	{"$s": {"p": {"_id": {"t": "string"}, "at": {"t": "date"}}, "$k": ["_id", "at"]},
//	 "_id": "a1", "at": 1767225600000}
//
// Dates are epoch milliseconds, ObjectIDs hex strings, binary data base64;
// objects carry their own "$s" and arrays an "i" list with one schema per item.
// sjsonToBSON turns such a text back into BSON, so that records read straight
// from the tables decode into the same Go values as through the wire protocol.

type sjsonSchema struct {
	Props map[string]*sjsonElem `json:"p"`
	Keys  []string              `json:"$k"`
}

type sjsonElem struct {
	Type    string       `json:"t"`
	Schema  *sjsonSchema `json:"$s"`
	Items   []*sjsonElem `json:"i"`
	Subtype *byte        `json:"s"`
	Options *string      `json:"o"`
}

// sjsonToBSON converts one stored document.
func sjsonToBSON(text []byte) (bson.Raw, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(text, &fields); err != nil {
		return nil, fmt.Errorf("parse stored document: %w", err)
	}
	var schema sjsonSchema
	if err := json.Unmarshal(fields["$s"], &schema); err != nil {
		return nil, fmt.Errorf("parse stored document schema: %w", err)
	}
	doc, err := appendDocument(nil, &schema, fields)
	if err != nil {
		return nil, err
	}
	return bson.Raw(doc), nil
}

func appendDocument(dst []byte, schema *sjsonSchema, fields map[string]json.RawMessage) ([]byte, error) {
	idx, dst := bsoncore.ReserveLength(dst)
	for _, key := range schema.Keys {
		elem, ok := schema.Props[key]
		raw, present := fields[key]
		if !ok || !present {
			return nil, fmt.Errorf("stored document: field %q is missing from its schema or its values", key)
		}
		var err error
		if dst, err = appendValue(dst, key, elem, raw); err != nil {
			return nil, fmt.Errorf("field %q: %w", key, err)
		}
	}
	dst = append(dst, 0x00)
	return bsoncore.UpdateLength(dst, idx, int32(len(dst[idx:]))), nil
}

func appendValue(dst []byte, key string, elem *sjsonElem, raw json.RawMessage) ([]byte, error) {
	switch elem.Type {
	case "string":
		s, err := jsonString(raw)
		return bsoncore.AppendStringElement(dst, key, s), err
	case "long":
		n, err := strconv.ParseInt(string(raw), 10, 64)
		return bsoncore.AppendInt64Element(dst, key, n), err
	case "int":
		n, err := strconv.ParseInt(string(raw), 10, 32)
		return bsoncore.AppendInt32Element(dst, key, int32(n)), err
	case "double":
		f, err := strconv.ParseFloat(string(raw), 64)
		return bsoncore.AppendDoubleElement(dst, key, f), err
	case "bool":
		switch string(raw) {
		case "true", "false":
			return bsoncore.AppendBooleanElement(dst, key, string(raw) == "true"), nil
		}
		return nil, fmt.Errorf("bad bool %s", raw)
	case "null":
		return bsoncore.AppendNullElement(dst, key), nil
	case "date":
		ms, err := strconv.ParseInt(string(raw), 10, 64)
		return bsoncore.AppendDateTimeElement(dst, key, ms), err
	case "objectId":
		s, err := jsonString(raw)
		if err != nil {
			return nil, err
		}
		var oid primitive.ObjectID
		if n, err := hex.Decode(oid[:], []byte(s)); err != nil || n != len(oid) {
			return nil, fmt.Errorf("bad objectId %q", s)
		}
		return bsoncore.AppendObjectIDElement(dst, key, oid), nil
	case "binData":
		s, err := jsonString(raw)
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || elem.Subtype == nil {
			return nil, fmt.Errorf("bad binData")
		}
		return bsoncore.AppendBinaryElement(dst, key, *elem.Subtype, b), nil
	case "object":
		if elem.Schema == nil {
			return nil, errors.New("object without schema")
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, err
		}
		dst = bsoncore.AppendHeader(dst, bsontype.EmbeddedDocument, key)
		return appendDocument(dst, elem.Schema, fields)
	case "array":
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		if len(items) != len(elem.Items) {
			return nil, fmt.Errorf("array of %d values has %d item schemas", len(items), len(elem.Items))
		}
		dst = bsoncore.AppendHeader(dst, bsontype.Array, key)
		idx, dst := bsoncore.ReserveLength(dst)
		for i, item := range items {
			var err error
			if dst, err = appendValue(dst, strconv.Itoa(i), elem.Items[i], item); err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
		}
		dst = append(dst, 0x00)
		return bsoncore.UpdateLength(dst, idx, int32(len(dst[idx:]))), nil
	}
	// regex and timestamp values are never written by fieldcrm.
	return nil, fmt.Errorf("unsupported stored type %q", elem.Type)
}

// jsonString decodes a JSON string, without the generic decoder when it holds
// no escapes (the common case).
func jsonString(raw json.RawMessage) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}
