package embedded

import (
	"bytes"
	"sync"
)

// schemaCache keeps the parsed "$s" schemas of stored documents by their
// text. Records of one collection share a handful of shapes (the same
// fields, of the same types, arrays of the same lengths), and parsing the
// schema anew was a quarter of the CPU time of every read straight from
// the tables (list pages, exports, sync pulls, reports). A parsed schema
// is never changed, so one may serve many readers at once.
//
// It also keeps the scratch space of conversions (decoding) for the next
// ones.
type schemaCache struct {
	mu        sync.RWMutex
	byText    map[string]*sjsonSchema
	textLen   int
	decodings sync.Pool
}

// Bounds of the cache: past either, it starts again empty. Shapes that
// come and go (a field edited on a few records) are forgotten that way,
// and the common ones are parsed again once.
const (
	maxCachedSchemas     = 4096
	maxCachedSchemaBytes = 8 << 20
)

// schema returns the parsed form of raw, a "$s" schema's text.
func (c *schemaCache) schema(raw []byte) (*sjsonSchema, error) {
	if c == nil {
		return parseSchema(raw)
	}
	if s := c.known(raw); s != nil {
		return s, nil
	}
	s, err := parseSchema(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byText == nil || len(c.byText) >= maxCachedSchemas || c.textLen+len(raw) > maxCachedSchemaBytes {
		c.byText, c.textLen = map[string]*sjsonSchema{}, 0
	}
	c.byText[string(raw)] = s
	c.textLen += len(raw)
	return s, nil
}

// leading returns the schema a stored document starts with, and where its
// text ends, when the cache knows it; nil otherwise. FerretDB and
// bsonToSJSON write the schema first, its key order last in it, and the _id
// next, and scanning the schema (two thirds of a customer's text) cost more
// than converting the values. So the schema is taken to end where the key
// order closes before the _id, and looked up: a text the cache holds is a
// whole JSON value, read as one before, so a document that starts with it
// holds exactly that value there. Where the guess is wrong (an object
// inside the schema whose key order is followed by an "_id"), the lookup
// fails and the caller scans.
func (c *schemaCache) leading(text []byte) (*sjsonSchema, int) {
	at, idFollows := schemaStart(text)
	if c == nil || at < 0 {
		return nil, 0
	}
	// The search starts at each ']' (the end of an array), rare in a
	// schema, so it runs at memory speed; a search for the "," before
	// the _id stopped at every member and took longer than the rest of
	// the conversion.
	n := bytes.Index(text[at:], []byte(idFollows))
	if n < 0 {
		return nil, 0
	}
	n += len("]}")
	s := c.known(text[at : at+n])
	if s == nil {
		return nil, 0
	}
	return s, at + n
}

// known returns the parsed schema whose text is raw, or nil.
func (c *schemaCache) known(raw []byte) *sjsonSchema {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byText[string(raw)]
}

// schemaStart returns where the schema's text starts in a stored document
// that opens with it, and what follows the schema: the end of its key
// order, then the _id. {"$s": and ]},"_id": as written here and by
// FerretDB on SQLite, with a space after each colon and comma as
// PostgreSQL gives them back. -1 for other texts.
func schemaStart(text []byte) (int, string) {
	switch {
	case bytes.HasPrefix(text, []byte(`{"$s":{`)):
		return len(`{"$s":`), `]},"_id":`
	case bytes.HasPrefix(text, []byte(`{"$s": {`)):
		return len(`{"$s": `), `]}, "_id": `
	}
	return -1, ""
}

// decoding returns scratch space for a conversion; done takes it back.
func (c *schemaCache) decoding() *decoding {
	if c != nil {
		if d, ok := c.decodings.Get().(*decoding); ok {
			return d
		}
	}
	return &decoding{}
}

func (c *schemaCache) done(d *decoding) {
	if c != nil {
		c.decodings.Put(d)
	}
}
