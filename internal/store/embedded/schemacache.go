package embedded

import "sync"

// schemaCache keeps the parsed "$s" schemas of stored documents by their
// text. Records of one collection share a handful of shapes (the same
// fields, of the same types, arrays of the same lengths), and parsing the
// schema anew was a quarter of the CPU time of every read straight from
// the tables (list pages, exports, sync pulls, reports). A parsed schema
// is never changed, so one may serve many readers at once.
type schemaCache struct {
	mu      sync.RWMutex
	byText  map[string]*sjsonSchema
	textLen int
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
