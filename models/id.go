package models

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// idEncoding is lower-case base32 without padding: URL-safe, case-insensitive
// file-system safe, and close to the 16-character ids WatermelonDB makes on phones.
var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// NewID returns a random 20-character id (100 bits): collisions are not a concern
// at any realistic scale, and ids reveal nothing about order or count.
func NewID() string {
	var b [13]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return strings.ToLower(idEncoding.EncodeToString(b[:]))[:20]
}

// IDFor returns the id of the record that stands for one event, the same
// every time for the same parts, so that writing the event twice stores it
// once; it looks like NewID's ids.
func IDFor(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return idEncoding.EncodeToString(sum[:13])[:20]
}
