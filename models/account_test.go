package models

import (
	"errors"
	"strings"
	"testing"
)

func fieldsOf(err error) string {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return ""
	}
	var names []string
	for _, f := range ve.Fields {
		names = append(names, f.Field)
	}
	return strings.Join(names, ",")
}

func TestSignupNormalizeAndValidate(t *testing.T) {
	cases := []struct {
		name   string
		in     Signup
		fields string
	}{
		{"valid", Signup{CompanyName: " Acme  Ltd ", Name: "Ana", Email: " Ana@Example.COM ", Password: "long enough pw"}, ""},
		{"all missing", Signup{}, "company_name,name,email,password"},
		{"bad email", Signup{CompanyName: "A", Name: "A", Email: "ana@", Password: "long enough pw"}, "email"},
		{"email with display name", Signup{CompanyName: "A", Name: "A", Email: "Ana <ana@x.com>", Password: "long enough pw"}, "email"},
		{"email without dot in domain", Signup{CompanyName: "A", Name: "A", Email: "ana@localhost", Password: "long enough pw"}, "email"},
		{"short password", Signup{CompanyName: "A", Name: "A", Email: "a@x.com", Password: "123456789"}, "password"},
		{"huge password", Signup{CompanyName: "A", Name: "A", Email: "a@x.com", Password: strings.Repeat("p", 257)}, "password"},
		{"long name", Signup{CompanyName: strings.Repeat("公", 201), Name: "A", Email: "a@x.com", Password: "long enough pw"}, "company_name"},
		{"200 Chinese characters fit", Signup{CompanyName: strings.Repeat("公", 200), Name: "A", Email: "a@x.com", Password: "long enough pw"}, ""},
		{"bad zone", Signup{CompanyName: "A", Name: "A", Email: "a@x.com", Password: "long enough pw", TimeZone: "Moon/Base"}, "time_zone"},
		{"Local zone refused", Signup{CompanyName: "A", Name: "A", Email: "a@x.com", Password: "long enough pw", TimeZone: "Local"}, "time_zone"},
		{"bad locale", Signup{CompanyName: "A", Name: "A", Email: "a@x.com", Password: "long enough pw", Locale: "??"}, "locale"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Normalize()
			if got := fieldsOf(c.in.Validate()); got != c.fields {
				t.Fatalf("invalid fields %q, want %q", got, c.fields)
			}
		})
	}
	s := Signup{CompanyName: " Acme  Ltd ", Email: " Ana@Example.COM ", Locale: "zh-cn"}
	s.Normalize()
	if s.CompanyName != "Acme Ltd" || s.Email != "ana@example.com" || s.Locale != "zh-CN" || s.TimeZone != "UTC" {
		t.Fatalf("normalized: %+v", s)
	}
}

func TestActorPermissions(t *testing.T) {
	admin := Actor{UserID: "a", TenantID: "t", Role: RoleAdmin}
	mgr := Actor{UserID: "m", TenantID: "t", Role: RoleManager, ManagedTeamIDs: []string{"T1"}}
	rep := Actor{UserID: "r", TenantID: "t", Role: RoleRep, TeamID: "T1"}
	repUser := User{ID: "r", TenantID: "t", Role: RoleRep, TeamID: "T1"}
	otherRep := User{ID: "o", TenantID: "t", Role: RoleRep, TeamID: "T2"}
	foreign := User{ID: "f", TenantID: "other", Role: RoleRep, TeamID: "T1"}
	name := "N"
	role := RoleAdmin
	team2 := "T2"
	no := false

	seeCases := []struct {
		who    string
		a      Actor
		target User
		want   bool
	}{
		{"admin sees any rep", admin, otherRep, true},
		{"admin never sees another tenant", admin, foreign, false},
		{"manager sees own team", mgr, repUser, true},
		{"manager not other team", mgr, otherRep, false},
		{"rep sees self", rep, repUser, true},
		{"rep not others", rep, otherRep, false},
	}
	for _, c := range seeCases {
		if got := c.a.CanSeeUser(c.target); got != c.want {
			t.Errorf("%s: %v", c.who, got)
		}
	}
	patchCases := []struct {
		who    string
		a      Actor
		target User
		p      UserPatch
		ok     bool
	}{
		{"rep renames self", rep, repUser, UserPatch{Name: &name}, true},
		{"rep promotes self", rep, repUser, UserPatch{Role: &role}, false},
		{"manager renames own rep", mgr, repUser, UserPatch{Name: &name}, true},
		{"manager moves rep out of own teams", mgr, repUser, UserPatch{TeamID: &team2}, false},
		{"manager promotes rep", mgr, repUser, UserPatch{Role: &role}, false},
		{"manager deactivates own rep", mgr, repUser, UserPatch{Active: &no}, true},
		{"admin deactivates self", admin, User{ID: "a", TenantID: "t", Role: RoleAdmin}, UserPatch{Active: &no}, false},
		{"admin promotes anyone", admin, otherRep, UserPatch{Role: &role}, true},
	}
	for _, c := range patchCases {
		err := c.a.CanPatchUser(c.target, c.p)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.who, err)
		}
		if err != nil && !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: %v is not ErrForbidden", c.who, err)
		}
	}
	if err := mgr.CanCreateUser(NewUser{Role: RoleRep, TeamID: "T2"}); !errors.Is(err, ErrForbidden) {
		t.Error("manager created rep in other team")
	}
	if err := mgr.CanCreateUser(NewUser{Role: RoleRep, TeamID: "T1"}); err != nil {
		t.Error(err)
	}
}

func TestNewIDIsUniqueAndShaped(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := NewID()
		if len(id) != 20 || strings.Trim(id, "0123456789abcdefghijklmnopqrstuv") != "" || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
