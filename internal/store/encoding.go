package store

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsoncodec"
	"go.mongodb.org/mongo-driver/bson/bsonrw"
)

// Every document the store writes is encoded with its maps' keys in order
// (a record's field_seqs and field_devices, one entry per field; custom
// fields). Go iterates a map in a new order each time, so each record came
// out with its fields in an order of its own, and on FerretDB with a
// schema of its own (the "$s" stored with the document): the embedded
// engine parses each schema once and keeps it (embedded.schemaCache), and
// every record pulled or exported parsed one anew, about a third of a
// pull's time. In order, the records of a collection share a few schemas.

// newRegistry is the driver's default registry with sortedMaps for maps.
func newRegistry() (*bsoncodec.Registry, error) {
	// The driver's map encoder, from a registry of its own: a lookup keeps
	// the encoder it found for that type, ahead of any kind encoder.
	fallback, err := bson.NewRegistry().LookupEncoder(reflect.TypeFor[map[string]any]())
	if err != nil {
		return nil, fmt.Errorf("the driver's map encoder: %w", err)
	}
	reg := bson.NewRegistry()
	reg.RegisterKindEncoder(reflect.Map, sortedMaps{fallback: fallback})
	return reg, nil
}

// sortedMaps encodes a map with string keys as a document with its keys in
// order; other maps as the driver does (fallback).
type sortedMaps struct {
	fallback bsoncodec.ValueEncoder
}

func (m sortedMaps) EncodeValue(ec bsoncodec.EncodeContext, vw bsonrw.ValueWriter, val reflect.Value) error {
	if val.Kind() != reflect.Map || val.Type().Key().Kind() != reflect.String {
		return m.fallback.EncodeValue(ec, vw, val)
	}
	if val.IsNil() {
		return vw.WriteNull() // as the driver writes a nil map
	}
	keys := val.MapKeys()
	slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
	dw, err := vw.WriteDocument()
	if err != nil {
		return err
	}
	for _, k := range keys {
		ew, err := dw.WriteDocumentElement(k.String())
		if err != nil {
			return err
		}
		v := val.MapIndex(k)
		if v.Kind() == reflect.Interface {
			if v.IsNil() {
				if err := ew.WriteNull(); err != nil {
					return err
				}
				continue
			}
			v = v.Elem()
		}
		enc, err := ec.LookupEncoder(v.Type())
		if err != nil {
			return fmt.Errorf("encode the value of %q: %w", k.String(), err)
		}
		if err := enc.EncodeValue(ec, ew, v); err != nil {
			return fmt.Errorf("encode the value of %q: %w", k.String(), err)
		}
	}
	return dw.WriteDocumentEnd()
}

// marshal encodes doc as the store writes documents (see newRegistry).
func (s *Store) marshal(doc any) ([]byte, error) {
	var buf bytes.Buffer
	vw, err := bsonrw.NewBSONValueWriter(&buf)
	if err != nil {
		return nil, err
	}
	enc, err := bson.NewEncoder(vw)
	if err != nil {
		return nil, err
	}
	if err := enc.SetRegistry(s.registry); err != nil {
		return nil, err
	}
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
