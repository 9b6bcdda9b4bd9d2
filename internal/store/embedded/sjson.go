package embedded

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/fieldcrm/fieldcrm/internal/jsontext"
	"github.com/fieldcrm/fieldcrm/models"
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

// sjsonToBSON converts one stored document; schemas, when not nil, keeps
// the parsed schemas of documents read before.
func sjsonToBSON(text []byte, schemas *schemaCache) (bson.Raw, error) {
	return sjsonToBSONKeeping(text, schemas, nil)
}

// pulledMaps names the members of a record's per-field maps (models.Meta's
// field_seqs and field_devices) that a pull reads: those of the id, which
// say when and by which device the record was created. The maps hold an
// entry per field, and converting and decoding them was half of a pulled
// record's decoding.
func pulledMaps() map[string]string {
	return map[string]string{"field_seqs": "id", "field_devices": "id"}
}

// shownCut is what a query of records to be shown (models.Query.Shown)
// leaves out of them: the per-field maps, which they never show.
func shownCut(q models.Query) map[string]string {
	if !q.Shown {
		return nil
	}
	return map[string]string{"field_seqs": "", "field_devices": ""}
}

// sjsonToBSONKeeping is sjsonToBSON with each top-level object that keep
// names cut to the one member keep gives for it (none when it lacks it), or
// left out where keep gives "".
func sjsonToBSONKeeping(text []byte, schemas *schemaCache, keep map[string]string) (bson.Raw, error) {
	d := schemas.decoding()
	defer schemas.done(d)
	schema, schemaLen, fields, err := d.document(text, schemas)
	if err != nil {
		return nil, err
	}
	// The BSON form is about as long as the values' text; the schema
	// (two thirds of a customer's text) has no part in it.
	doc, err := d.appendDocument(make([]byte, 0, len(text)-schemaLen+64), 0, schema, fields, keep)
	if err != nil {
		return nil, err
	}
	return bson.Raw(doc), nil
}

// members are the keys and raw values of a JSON object, in their order.
type members []member

type member struct {
	key, val []byte
}

// get returns the value of key, or nil. As JSON decoders do, the last of
// repeated keys wins.
func (m members) get(key string) []byte {
	for i := len(m) - 1; i >= 0; i-- {
		if string(m[i].key) == key {
			return m[i].val
		}
	}
	return nil
}

// decoding is the scratch space of converting stored documents: the members
// of the objects and the items of the arrays met at each depth of nesting,
// kept from one document to the next. Allocating them anew for every object
// and array was a quarter of a conversion's CPU (a customer holds a dozen of
// them) and most of the garbage of a list page or an export.
type decoding struct {
	members []members  // by depth
	items   [][][]byte // by depth
}

// document reads the schema and the other members of a stored document,
// and says how long the schema's text is.
// Where the text starts with a schema the cache knows (schemaCache.leading),
// its few kilobytes are looked up rather than scanned.
func (d *decoding) document(text []byte, schemas *schemaCache) (*sjsonSchema, int, members, error) {
	if schema, end := schemas.leading(text); schema != nil {
		fields, err := d.membersFrom(0, text, end)
		if err == nil && fields.get("$s") == nil {
			return schema, end, fields, nil
		}
		// A second "$s" (never written, but the text is read as the
		// scanner reads it, the last of repeated keys winning), or a
		// broken text: read it the long way, which says which.
	}
	fields, err := d.membersFrom(0, text, -1)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("parse stored document: %w", err)
	}
	raw := fields.get("$s")
	schema, err := schemas.schema(raw)
	if err != nil {
		return nil, 0, nil, err
	}
	return schema, len(raw), fields, nil
}

// membersFrom reads the members of the JSON object raw into the scratch
// list of depth: all of them, or with from >= 0, those after the value
// ending at from (the schema document skipped).
func (d *decoding) membersFrom(depth int, raw []byte, from int) (members, error) {
	for len(d.members) <= depth {
		d.members = append(d.members, make(members, 0, 16))
	}
	var fields members
	var err error
	if from < 0 {
		fields, err = appendMembersOf(d.members[depth][:0], raw)
	} else {
		fields, err = appendMembersAfter(d.members[depth][:0], raw, from)
	}
	d.members[depth] = fields
	return fields, err
}

// itemsOf reads the items of the JSON array raw into the scratch list of depth.
func (d *decoding) itemsOf(depth int, raw []byte) ([][]byte, error) {
	for len(d.items) <= depth {
		d.items = append(d.items, make([][]byte, 0, 8))
	}
	items, err := appendItemsOf(d.items[depth][:0], raw)
	d.items[depth] = items
	return items, err
}

// appendDocument writes fields as a BSON document in schema's key order.
// FerretDB and bsonToSJSON write the values in that order after the
// schema, so each key is found at the next member; another order, or a
// repeated key, is read by looking each key up. fields is the scratch list
// of depth.
func (d *decoding) appendDocument(dst []byte, depth int, schema *sjsonSchema, fields members, keep map[string]string) ([]byte, error) {
	idx, dst := bsoncore.ReserveLength(dst)
	inOrder := inSchemaOrder(schema.Keys, fields)
	next := 0
	for _, key := range schema.Keys {
		elem, ok := schema.Props[key]
		var raw []byte
		if inOrder {
			for string(fields[next].key) == "$s" {
				next++
			}
			raw = fields[next].val
			next++
		} else {
			raw = fields.get(key)
		}
		if !ok || raw == nil {
			return nil, fmt.Errorf("stored document: field %q is missing from its schema or its values", key)
		}
		var err error
		member, cut := keep[key]
		switch {
		case cut && member == "":
			continue
		case cut && elem.Type == "object" && elem.Schema != nil:
			dst, err = d.appendOneMember(dst, depth+1, key, elem.Schema, raw, member)
		default:
			dst, err = d.appendValue(dst, depth+1, key, elem, raw)
		}
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", key, err)
		}
	}
	dst = append(dst, 0x00)
	return bsoncore.UpdateLength(dst, idx, int32(len(dst[idx:]))), nil
}

// appendOneMember writes the object raw (of schema) as a document holding
// its member named member alone, or nothing when it has none.
func (d *decoding) appendOneMember(dst []byte, depth int, key string, schema *sjsonSchema, raw []byte, member string) ([]byte, error) {
	fields, err := d.membersFrom(depth, raw, -1)
	if err != nil {
		return nil, err
	}
	dst = bsoncore.AppendHeader(dst, bsontype.EmbeddedDocument, key)
	idx, dst := bsoncore.ReserveLength(dst)
	if val, elem := fields.get(member), schema.Props[member]; val != nil && elem != nil {
		if dst, err = d.appendValue(dst, depth+1, member, elem, val); err != nil {
			return nil, fmt.Errorf("member %q: %w", member, err)
		}
	}
	dst = append(dst, 0x00)
	return bsoncore.UpdateLength(dst, idx, int32(len(dst[idx:]))), nil
}

// inSchemaOrder tells whether fields, leaving out schemas, are exactly
// keys in that order.
func inSchemaOrder(keys []string, fields members) bool {
	k := 0
	for _, f := range fields {
		if string(f.key) == "$s" {
			continue
		}
		if k == len(keys) || keys[k] != string(f.key) {
			return false
		}
		k++
	}
	return k == len(keys)
}

// appendValue writes raw, of the schema elem, as the BSON element key; an
// object's members or an array's items go to the scratch lists of depth.
func (d *decoding) appendValue(dst []byte, depth int, key string, elem *sjsonElem, raw []byte) ([]byte, error) {
	switch elem.Type {
	case "string":
		if s, ok := unescapedString(raw); ok {
			// As bsoncore.AppendStringElement, without making a string.
			dst = bsoncore.AppendHeader(dst, bsontype.String, key)
			dst = bsoncore.AppendInt32(dst, int32(len(s)+1))
			return append(append(dst, s...), 0x00), nil
		}
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
		fields, err := d.membersFrom(depth, raw, -1)
		if err != nil {
			return nil, err
		}
		dst = bsoncore.AppendHeader(dst, bsontype.EmbeddedDocument, key)
		return d.appendDocument(dst, depth, elem.Schema, fields, nil)
	case "array":
		items, err := d.itemsOf(depth, raw)
		if err != nil {
			return nil, err
		}
		if len(items) != len(elem.Items) {
			return nil, fmt.Errorf("array of %d values has %d item schemas", len(items), len(elem.Items))
		}
		dst = bsoncore.AppendHeader(dst, bsontype.Array, key)
		idx, dst := bsoncore.ReserveLength(dst)
		for i, item := range items {
			if dst, err = d.appendValue(dst, depth+1, strconv.Itoa(i), elem.Items[i], item); err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
		}
		dst = append(dst, 0x00)
		return bsoncore.UpdateLength(dst, idx, int32(len(dst[idx:]))), nil
	}
	// regex and timestamp values are never written by fieldcrm.
	return nil, fmt.Errorf("unsupported stored type %q", elem.Type)
}

// unescapedString returns the contents of a JSON string that holds no
// escapes (the common case), as a slice of raw.
func unescapedString(raw []byte) ([]byte, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true
	}
	return nil, false
}

// jsonString decodes a JSON string, without the generic decoder when it holds
// no escapes (the common case).
func jsonString(raw []byte) (string, error) {
	if s, ok := unescapedString(raw); ok {
		return string(s), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// bsonToSJSON is the reverse of sjsonToBSON: it writes doc in the form FerretDB
// itself stores, byte for byte where it matters (the _id text that its unique
// index compares), so that FerretDB reads back what was written here.
func bsonToSJSON(doc bson.Raw) ([]byte, error) {
	elems, err := doc.Elements()
	if err != nil {
		return nil, fmt.Errorf("read document: %w", err)
	}
	if len(elems) == 0 || elems[0].Key() != "_id" {
		return nil, errors.New("document must start with _id")
	}
	schema, err := appendSchema(nil, doc)
	if err != nil {
		return nil, err
	}
	out := append(append([]byte(`{"$s":`), schema...), ',')
	if out, err = appendMembers(out, elems, appendSJSONValue); err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// appendMembers writes elems as the members of a JSON object ("key":value,
// comma separated, without the braces), each value written by value.
func appendMembers(dst []byte, elems []bson.RawElement, value func([]byte, bson.RawValue) ([]byte, error)) ([]byte, error) {
	var err error
	for i, e := range elems {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsontext.AppendString(dst, e.Key())
		dst = append(dst, ':')
		if dst, err = value(dst, e.Value()); err != nil {
			return nil, fmt.Errorf("field %q: %w", e.Key(), err)
		}
	}
	return dst, nil
}

// appendSchema writes a document's "$s": the type of each field and the key order.
func appendSchema(dst []byte, doc bson.Raw) ([]byte, error) {
	elems, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	if len(elems) == 0 {
		return append(dst, "{}"...), nil
	}
	dst = append(dst, `{"p":{`...)
	if dst, err = appendMembers(dst, elems, appendElemSchema); err != nil {
		return nil, err
	}
	dst = append(dst, `},"$k":[`...)
	for i, e := range elems {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsontext.AppendString(dst, e.Key())
	}
	return append(dst, "]}"...), nil
}

func appendElemSchema(dst []byte, v bson.RawValue) ([]byte, error) {
	switch v.Type {
	case bsontype.EmbeddedDocument:
		dst = append(dst, `{"t":"object","$s":`...)
		dst, err := appendSchema(dst, v.Document())
		return append(dst, '}'), err
	case bsontype.Array:
		values, err := v.Array().Values()
		if err != nil {
			return nil, err
		}
		dst = append(dst, `{"t":"array","i":[`...)
		for i, item := range values {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendElemSchema(dst, item); err != nil {
				return nil, err
			}
		}
		return append(dst, "]}"...), nil
	case bsontype.Binary:
		subtype, _ := v.Binary()
		dst = strconv.AppendInt(append(dst, `{"t":"binData","s":`...), int64(subtype), 10)
		return append(dst, '}'), nil
	}
	name := sjsonTypeName(v.Type)
	if name == "" {
		return nil, fmt.Errorf("unsupported BSON type %s", v.Type)
	}
	return append(append(append(dst, `{"t":"`...), name...), `"}`...), nil
}

// sjsonTypeName names the scalar types fieldcrm stores; "" for the others.
func sjsonTypeName(t bsontype.Type) string {
	switch t {
	case bsontype.Double:
		return "double"
	case bsontype.String:
		return "string"
	case bsontype.ObjectID:
		return "objectId"
	case bsontype.Boolean:
		return "bool"
	case bsontype.DateTime:
		return "date"
	case bsontype.Null:
		return "null"
	case bsontype.Int32:
		return "int"
	case bsontype.Int64:
		return "long"
	}
	return ""
}

// appendSJSONValue writes a value as plain JSON, as FerretDB does.
func appendSJSONValue(dst []byte, v bson.RawValue) ([]byte, error) {
	switch v.Type {
	case bsontype.String:
		return jsontext.AppendString(dst, v.StringValue()), nil
	case bsontype.Int64:
		return strconv.AppendInt(dst, v.Int64(), 10), nil
	case bsontype.Int32:
		return strconv.AppendInt(dst, int64(v.Int32()), 10), nil
	case bsontype.DateTime:
		return strconv.AppendInt(dst, v.DateTime(), 10), nil
	case bsontype.Double:
		b, err := json.Marshal(v.Double())
		return append(dst, b...), err
	case bsontype.Boolean:
		return strconv.AppendBool(dst, v.Boolean()), nil
	case bsontype.Null:
		return append(dst, "null"...), nil
	case bsontype.ObjectID:
		return jsontext.AppendString(dst, v.ObjectID().Hex()), nil
	case bsontype.Binary:
		_, data := v.Binary()
		return jsontext.AppendString(dst, base64.StdEncoding.EncodeToString(data)), nil
	case bsontype.EmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			return nil, err
		}
		if dst, err = appendMembers(append(dst, '{'), elems, appendSJSONValue); err != nil {
			return nil, err
		}
		return append(dst, '}'), nil
	case bsontype.Array:
		values, err := v.Array().Values()
		if err != nil {
			return nil, err
		}
		dst = append(dst, '[')
		for i, item := range values {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendSJSONValue(dst, item); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	return dst, fmt.Errorf("unsupported BSON type %s", v.Type)
}
