package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are argon2id's cost settings. The chosen values are written into
// every hash, so raising them later affects new hashes only and old ones still verify.
type PasswordParams struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultPasswordParams follow OWASP's argon2id recommendation (19 MiB, 2 passes,
// 1 lane): about 30 ms per hash on one core of the 2-core test machine.
var DefaultPasswordParams = PasswordParams{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}

// CheapPasswordParams are for tests only: they keep the race detector fast.
var CheapPasswordParams = PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}

const (
	saltBytes = 16
	keyBytes  = 32
)

var b64 = base64.RawStdEncoding

// HashPassword returns password's argon2id hash in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$key), which other tools can verify too.
func (p PasswordParams) HashPassword(password string) (string, error) {
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyBytes)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("malformed password hash")

// Limits of a hash's own settings. A hash is read from the store, but a
// malformed or tampered one must neither panic argon2 (zero passes or lanes)
// nor make one login allocate gigabytes: the settings are ours, and the
// largest we would ever choose is far below these.
const (
	maxHashMemoryKiB = 1 << 20 // 1 GiB
	maxHashTime      = 64
	maxKeyBytes      = 128
	maxSaltBytes     = 128
)

// VerifyPassword reports whether password matches hash, comparing in constant time.
func VerifyPassword(hash, password string) (bool, error) {
	p, salt, want, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parseHash reads a hash HashPassword wrote, refusing settings outside the
// limits above.
func parseHash(hash string) (p PasswordParams, salt, key []byte, err error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, errBadHash
	}
	// m, t and p, in that order, as HashPassword writes them.
	var n [3]uint64
	settings := strings.Split(parts[3], ",")
	if len(settings) != len(n) {
		return p, nil, nil, errBadHash
	}
	for i, kv := range settings {
		name, val, _ := strings.Cut(kv, "=")
		v, perr := strconv.ParseUint(val, 10, 32)
		if perr != nil || name != "mtp"[i:i+1] {
			return p, nil, nil, errBadHash
		}
		n[i] = v
	}
	m, t, threads := n[0], n[1], n[2]
	if t < 1 || t > maxHashTime || threads < 1 || threads > 255 || m < 8*threads || m > maxHashMemoryKiB {
		return p, nil, nil, errBadHash
	}
	p = PasswordParams{MemoryKiB: uint32(m), Time: uint32(t), Threads: uint8(threads)}
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) > maxSaltBytes {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) == 0 || len(key) > maxKeyBytes {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}
