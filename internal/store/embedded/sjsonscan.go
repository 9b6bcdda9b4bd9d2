package embedded

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Reading stored documents without encoding/json.
//
// Why: sjsonToBSON decoded each document into map[string]json.RawMessage,
// which validates and copies every value, and its schema through reflection.
// That was a fifth of the CPU of a pushed edit (which reads its record) and
// shows in every read by id. The text was written by FerretDB or bsonToSJSON
// and comes back from the database as JSON, so the scanner only needs to find
// where each member and item starts and ends; values stay slices of the text.
// A text it cannot read is an error, never a panic.

var errBadStoredJSON = errors.New("stored document is not the JSON expected")

// eachMember calls fn with each key (decoded) and raw value of a JSON object.
func eachMember(raw []byte, fn func(key string, val []byte) error) error {
	return eachMemberBytes(raw, func(key, val []byte) error { return fn(string(key), val) })
}

// eachMemberBytes is eachMember with each key as bytes: a slice of raw
// unless the key holds escapes, so reading a document allocates no key.
func eachMemberBytes(raw []byte, fn func(key, val []byte) error) error {
	i, err := firstIn(raw, '{', '}')
	if err != nil || i < 0 {
		return err
	}
	for {
		key, val, end, err := memberAt(raw, i)
		if err != nil {
			return err
		}
		if err := fn(key, val); err != nil {
			return err
		}
		if i, err = nextOrClose(raw, end, '}'); err != nil || i < 0 {
			return err
		}
	}
}

// appendMembersOf appends the members of the JSON object raw to dst.
func appendMembersOf(dst members, raw []byte) (members, error) {
	i, err := firstIn(raw, '{', '}')
	if err != nil || i < 0 {
		return dst, err
	}
	return appendMembersAt(dst, raw, i)
}

// appendMembersAfter appends to dst the members of the JSON object raw
// that follow the member whose value ends at end.
func appendMembersAfter(dst members, raw []byte, end int) (members, error) {
	i, err := nextOrClose(raw, end, '}')
	if err != nil || i < 0 {
		return dst, err
	}
	return appendMembersAt(dst, raw, i)
}

// appendMembersAt appends to dst the members of a JSON object from the one
// starting at i to the object's end.
func appendMembersAt(dst members, raw []byte, i int) (members, error) {
	for {
		key, val, end, err := memberAt(raw, i)
		if err != nil {
			return dst, err
		}
		dst = append(dst, member{key, val})
		if i, err = nextOrClose(raw, end, '}'); err != nil || i < 0 {
			return dst, err
		}
	}
}

// memberAt reads the member of a JSON object starting at i: its key (a
// slice of raw unless it holds escapes), its raw value and where that ends.
func memberAt(raw []byte, i int) (key, val []byte, end int, err error) {
	keyEnd, err := valueEnd(raw, i)
	if err != nil || raw[i] != '"' {
		return nil, nil, 0, errBadStoredJSON
	}
	key = raw[i+1 : keyEnd-1]
	if bytes.IndexByte(key, '\\') >= 0 {
		decoded, err := jsonString(raw[i:keyEnd])
		if err != nil {
			return nil, nil, 0, err
		}
		key = []byte(decoded)
	}
	i = skipSpace(raw, keyEnd)
	if i >= len(raw) || raw[i] != ':' {
		return nil, nil, 0, errBadStoredJSON
	}
	start := skipSpace(raw, i+1)
	if end, err = valueEnd(raw, start); err != nil {
		return nil, nil, 0, err
	}
	return key, raw[start:end], end, nil
}

// eachItem calls fn with each raw item of a JSON array.
func eachItem(raw []byte, fn func(val []byte) error) error {
	i, err := firstIn(raw, '[', ']')
	if err != nil || i < 0 {
		return err
	}
	for {
		end, err := valueEnd(raw, i)
		if err != nil {
			return err
		}
		if err := fn(raw[i:end]); err != nil {
			return err
		}
		if i, err = nextOrClose(raw, end, ']'); err != nil || i < 0 {
			return err
		}
	}
}

// appendItemsOf appends the raw items of the JSON array raw to dst.
func appendItemsOf(dst [][]byte, raw []byte) ([][]byte, error) {
	err := eachItem(raw, func(item []byte) error {
		dst = append(dst, item)
		return nil
	})
	return dst, err
}

// firstIn returns where the first member or item of a JSON object or array
// (opened and closed by open and close) starts, or -1 when it is empty.
func firstIn(raw []byte, open, close byte) (int, error) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != open {
		return 0, errBadStoredJSON
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == close {
		return -1, nil
	}
	return i, nil
}

// nextOrClose reads the comma or closing bracket after a value ending at i:
// the start of the next value, or -1 at the close.
func nextOrClose(raw []byte, i int, close byte) (int, error) {
	i = skipSpace(raw, i)
	switch {
	case i >= len(raw):
		return 0, errBadStoredJSON
	case raw[i] == close:
		return -1, nil
	case raw[i] == ',':
		return skipSpace(raw, i+1), nil
	}
	return 0, errBadStoredJSON
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\t' || raw[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at i.
func valueEnd(raw []byte, i int) (int, error) {
	if i >= len(raw) {
		return 0, errBadStoredJSON
	}
	switch raw[i] {
	case '"':
		return stringEnd(raw, i)
	case '{', '[':
		depth := 0
		for i < len(raw) {
			switch raw[i] {
			case '"':
				end, err := stringEnd(raw, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errBadStoredJSON
	}
	start := i // a number, true, false or null
	for i < len(raw) && raw[i] != ',' && raw[i] != '}' && raw[i] != ']' && raw[i] != ' ' && raw[i] != '\n' && raw[i] != '\t' && raw[i] != '\r' {
		i++
	}
	if i == start {
		return 0, errBadStoredJSON
	}
	return i, nil
}

// stringEnd returns the index just past the JSON string starting at i.
func stringEnd(raw []byte, i int) (int, error) {
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errBadStoredJSON
}

// parseSchema reads a "$s" schema.
func parseSchema(raw []byte) (*sjsonSchema, error) {
	s := &sjsonSchema{}
	err := eachMember(raw, func(key string, val []byte) error {
		switch key {
		case "p":
			s.Props = map[string]*sjsonElem{}
			return eachMember(val, func(field string, elem []byte) error {
				e, err := parseElem(elem)
				s.Props[field] = e
				return err
			})
		case "$k":
			return eachItem(val, func(k []byte) error {
				name, err := jsonString(k)
				s.Keys = append(s.Keys, name)
				return err
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parse stored document schema: %w", err)
	}
	return s, nil
}

// parseElem reads the schema of one value.
func parseElem(raw []byte) (*sjsonElem, error) {
	e := &sjsonElem{}
	err := eachMember(raw, func(key string, val []byte) error {
		var err error
		switch key {
		case "t":
			e.Type, err = jsonString(val)
		case "$s":
			e.Schema, err = parseSchema(val)
		case "i":
			err = eachItem(val, func(item []byte) error {
				ie, err := parseElem(item)
				e.Items = append(e.Items, ie)
				return err
			})
		case "s":
			var n uint64
			n, err = strconv.ParseUint(string(val), 10, 8)
			subtype := byte(n)
			e.Subtype = &subtype
		case "o":
			var o string
			o, err = jsonString(val)
			e.Options = &o
		}
		return err
	})
	return e, err
}
