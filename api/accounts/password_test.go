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
