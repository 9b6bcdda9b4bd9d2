package crm

import (
	"bytes"
	"strings"
	"testing"
)

func TestSealerRoundTripAndWrongKey(t *testing.T) {
	s, err := NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("11010519491231002X")
	if !strings.HasPrefix(sealed, "v1:") || strings.Contains(sealed, "1101051949") {
		t.Fatalf("sealed form %q", sealed)
	}
	if again := s.Seal("11010519491231002X"); again == sealed {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	if plain, err := s.Open(sealed); err != nil || plain != "11010519491231002X" {
		t.Fatalf("open: %q, %v", plain, err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{2}, 32))
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("opened with the wrong key")
	}
	for _, bad := range []string{"v2:abc", "v1:!!!", "v1:AAAA"} {
		if _, err := s.Open(bad); err == nil {
			t.Errorf("opened %q", bad)
		}
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Fatal("accepted a short key")
	}
	if s.Seal("") != "" {
		t.Fatal("empty value sealed")
	}
}
