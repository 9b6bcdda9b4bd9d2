package models

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestDammKnownValue(t *testing.T) {
	// The worked example of the algorithm: 572 has check digit 4.
	if d := DammDigit("572"); d != 4 {
		t.Fatalf("DammDigit(572) = %d, want 4", d)
	}
}

func TestCustomerNumberFormat(t *testing.T) {
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		p    NumberPattern
		seq  int64
		want string
	}{
		{DefaultNumberPattern, 123, "C2026-000123-"},
		{NumberPattern{Prefix: "KH", Digits: 4}, 7, "KH0007-"},
		{NumberPattern{Digits: 3}, 12345, "12345-"}, // overflow keeps every digit
	}
	for _, c := range cases {
		got := c.p.Format(c.seq, at)
		if got[:len(got)-1] != c.want || !ValidCustomerNumber(got) {
			t.Errorf("Format(%d) = %s, want %s<check> that validates", c.seq, got, c.want)
		}
	}
}

// Property: every generated number validates, and every single-digit change and
// every swap of two adjacent different digits is caught.
func TestCustomerNumberCheckDigitCatchesTypos(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 2000 {
		p := NumberPattern{Prefix: "C", Year: rng.IntN(2) == 0, Digits: 3 + rng.IntN(8)}
		n := p.Format(rng.Int64N(1_000_000_000), at)
		if !ValidCustomerNumber(n) {
			t.Fatalf("%s does not validate", n)
		}
		b := []byte(n)
		for i := range b {
			if b[i] < '0' || b[i] > '9' {
				continue
			}
			orig := b[i]
			for d := byte('0'); d <= '9'; d++ {
				if d == orig {
					continue
				}
				b[i] = d
				if ValidCustomerNumber(string(b)) {
					t.Fatalf("single-digit error %s of %s not caught", b, n)
				}
			}
			b[i] = orig
			if j := i + 1; j < len(b) && b[j] >= '0' && b[j] <= '9' && b[j] != b[i] {
				b[i], b[j] = b[j], b[i]
				if ValidCustomerNumber(string(b)) {
					t.Fatalf("adjacent swap %s of %s not caught", b, n)
				}
				b[i], b[j] = b[j], b[i]
			}
		}
	}
}

func TestCustomerNumberRejectsMalformed(t *testing.T) {
	for _, n := range []string{"", "C2026-000123", "C2026-000123-", "C2026-000123-x", "7"} {
		if ValidCustomerNumber(n) {
			t.Errorf("%q validates", n)
		}
	}
}
