package embedded

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// schemaCache keeps the parsed "$s" schemas of stored documents by their
// text. Records of one collection share a handful of shapes (the same
// fields, of the same types, arrays of the same lengths), and parsing the
// schema anew was a quarter of the CPU time of every read straight from
// the tables (list pages, exports, sync pulls, reports). A parsed schema
// is never changed, so one may serve many readers at once.
//
// It also keeps the schemas of the last documents read, so that the next
// document's schema is found by comparing its text (see leading), and the
// scratch space of conversions (decoding) for the next ones.
type schemaCache struct {
	mu      sync.RWMutex
	byText  map[string]*sjsonSchema
	textLen int

	// recent holds up to recentSchemas schemas, the latest read first;
	// it is replaced whole, never changed, so readers need no lock.
	recent    atomic.Pointer[[]knownSchema]
	decodings sync.Pool
}

type knownSchema struct {
	text   []byte
	schema *sjsonSchema
}

// Bounds of the cache: past either, it starts again empty. Shapes that
// come and go (a field edited on a few records) are forgotten that way,
// and the common ones are parsed again once.
const (
	maxCachedSchemas     = 4096
	maxCachedSchemaBytes = 8 << 20
)

// recentSchemas bounds the schemas leading compares a text with: a miss
// costs a comparison with each, up to where they differ.
const recentSchemas = 8

// schema returns the parsed form of raw, a "$s" schema's text.
func (c *schemaCache) schema(raw []byte) (*sjsonSchema, error) {
	if c == nil {
		return parseSchema(raw)
	}
	c.mu.RLock()
	s := c.byText[string(raw)]
	c.mu.RUnlock()
	if s != nil {
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
// text ends, when it is one of the recent ones; nil otherwise. FerretDB and
// bsonToSJSON write the schema first, and scanning it (two thirds of a
// customer's text) cost more than converting the values. A recent schema's
// text is a whole JSON value, so a text that starts with it holds exactly
// that value there, and comparing bytes finds it.
func (c *schemaCache) leading(text []byte) (*sjsonSchema, int) {
	at := schemaStart(text)
	if c == nil || at < 0 {
		return nil, 0
	}
	if recent := c.recent.Load(); recent != nil {
		for _, k := range *recent {
			if bytes.HasPrefix(text[at:], k.text) {
				return k.schema, at + len(k.text)
			}
		}
	}
	return nil, 0
}

// remember makes schema, read from its text raw in the stored document
// text, the first of the recent ones, when leading would find it there.
func (c *schemaCache) remember(text, raw []byte, schema *sjsonSchema) {
	at := schemaStart(text)
	if c == nil || at < 0 || !bytes.HasPrefix(text[at:], raw) {
		return
	}
	next := make([]knownSchema, 1, recentSchemas)
	next[0] = knownSchema{text: bytes.Clone(raw), schema: schema}
	if recent := c.recent.Load(); recent != nil {
		for _, k := range *recent {
			if len(next) == recentSchemas {
				break
			}
			if k.schema != schema {
				next = append(next, k)
			}
		}
	}
	c.recent.Store(&next)
}

// schemaStart returns where the schema's text starts in a stored document
// that opens with it ({"$s": as written here and by FerretDB on SQLite,
// {"$s": with a space as PostgreSQL gives it back), or -1.
func schemaStart(text []byte) int {
	for _, opening := range []string{`{"$s":`, `{"$s": `} {
		if len(text) > len(opening) && string(text[:len(opening)]) == opening && text[len(opening)] != ' ' {
			return len(opening)
		}
	}
	return -1
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
