package accounts

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

func TestPasswordHashVerifies(t *testing.T) {
	hash, err := CheapPasswordParams.HashPassword("s3cret pass")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash format: %s", hash)
	}
	for pw, want := range map[string]bool{"s3cret pass": true, "s3cret pas": false, "": false} {
		if ok, err := VerifyPassword(hash, pw); err != nil || ok != want {
			t.Errorf("%q: %v %v", pw, ok, err)
		}
	}
	other, _ := CheapPasswordParams.HashPassword("s3cret pass")
	if other == hash {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$v=19$m=1,t=1,p=1$aa$bb", "$argon2id$v=19$m=x$aa$bb"} {
		if _, err := VerifyPassword(bad, "x"); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

func TestSignerRejectsOtherSecretsAndShortSecrets(t *testing.T) {
	if _, err := NewSigner([]byte("short"), nil); err == nil {
		t.Fatal("short secret accepted")
	}
	now := time.Now()
	a, _ := NewSigner([]byte(strings.Repeat("a", 32)), func() time.Time { return now })
	b, _ := NewSigner([]byte(strings.Repeat("b", 32)), func() time.Time { return now })
	token, err := a.Issue(models.User{ID: "u", TenantID: "t", Role: models.RoleRep}, "s")
	if err != nil {
		t.Fatal(err)
	}
	claims, err := a.Verify(token)
	if err != nil || claims.Subject != "u" || claims.TenantID != "t" || claims.SessionID != "s" || claims.ID == "" {
		t.Fatalf("verify own token: %+v %v", claims, err)
	}
	if _, err := b.Verify(token); err == nil {
		t.Fatal("token verified with another secret")
	}
}

// Any stored hash is verified or refused as malformed, never a panic (argon2
// panics on zero passes or lanes) and never at a cost HashPassword would not
// choose; a hash HashPassword wrote verifies its password and no other.
func FuzzVerifyPassword(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5", "pw")
	f.Add("$argon2id$v=19$m=64,t=0,p=1$c2FsdA$a2V5", "pw")         // zero passes panicked
	f.Add("$argon2id$v=19$m=64,t=1,p=0$c2FsdA$a2V5", "pw")         // zero lanes panicked
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdA$a2V5", "pw") // 4 TiB of memory
	f.Add("$argon2id$v=19$m=64,t=1,p=1junk$c2FsdA$a2V5", "pw")
	f.Add("x$argon2id$v=19$m=64,t=1,p=1$c2FsdA$a2V5", "pw")
	f.Fuzz(func(t *testing.T, hash, password string) {
		p, _, _, err := parseHash(hash)
		if err == nil {
			if p.Time < 1 || p.Threads < 1 || p.MemoryKiB > maxHashMemoryKiB || p.Time > maxHashTime {
				t.Fatalf("parseHash(%q) = %+v", hash, p)
			}
			if p.MemoryKiB <= 1024 && p.Time <= 4 { // keep each run cheap
				_, _ = VerifyPassword(hash, password)
			}
		}
		own, err := CheapPasswordParams.HashPassword(password)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := VerifyPassword(own, password); !ok || err != nil {
			t.Fatalf("own hash of %q does not verify: %v", password, err)
		}
		if ok, _ := VerifyPassword(own, password+"x"); ok {
			t.Fatalf("own hash of %q verifies %q", password, password+"x")
		}
	})
}
