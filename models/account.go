package models

import (
	"net/mail"
	"strings"
	"time"
	_ "time/tzdata" // time zones are validated by name; do not depend on the host's zoneinfo
	"unicode/utf8"

	"golang.org/x/text/language"
)

// Role is what a user may do inside their tenant.
type Role string

const (
	// RoleAdmin sees and manages the whole tenant.
	RoleAdmin Role = "admin"
	// RoleManager sees and manages the teams they manage.
	RoleManager Role = "manager"
	// RoleRep sees and manages their own records.
	RoleRep Role = "rep"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleManager || r == RoleRep
}

// Limits on account fields. They keep documents small and reject garbage early;
// they are documented in docs/api.md and the OpenAPI document.
const (
	MaxNameLength     = 200
	MaxEmailLength    = 254 // RFC 5321 path limit
	MinPasswordLength = 10
	MaxPasswordLength = 256 // bounds the hashing work an attacker can ask for
	MaxDeviceIDLength = 128
)

// Tenant is one customer company of fieldcrm. Every other document carries its ID.
type Tenant struct {
	ID        string    `bson:"_id" json:"id"`
	Name      string    `bson:"name" json:"name"`
	CreatedAt time.Time `bson:"created_at" json:"created_at"`
	// Settings are the tenant's CRM rules; unset fields take their defaults.
	Settings Settings `bson:"settings" json:"settings"`
}

// Team groups reps under a manager.
type Team struct {
	ID        string    `bson:"_id" json:"id"`
	TenantID  string    `bson:"tenant_id" json:"-"`
	Name      string    `bson:"name" json:"name"`
	ManagerID string    `bson:"manager_id,omitempty" json:"manager_id,omitempty"`
	CreatedAt time.Time `bson:"created_at" json:"created_at"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at"`
}

// User is a person who signs in: an admin, a manager or a rep.
type User struct {
	ID        string `bson:"_id" json:"id"`
	TenantID  string `bson:"tenant_id" json:"tenant_id"`
	Email     string `bson:"email" json:"email"`
	Name      string `bson:"name" json:"name"`
	Role      Role   `bson:"role" json:"role"`
	TeamID    string `bson:"team_id,omitempty" json:"team_id,omitempty"`
	ManagerID string `bson:"manager_id,omitempty" json:"manager_id,omitempty"`
	// TimeZone and Locale are the user's own choice; empty means the
	// tenant's default (see InTenant), so that a tenant's change of its
	// default reaches every user who never chose.
	TimeZone string `bson:"time_zone" json:"time_zone"`
	Locale   string `bson:"locale" json:"locale"`
	// QuietHours, when set, hold back pushes that are not urgent.
	QuietHours   *QuietHours `bson:"quiet_hours,omitempty" json:"quiet_hours,omitempty"`
	Active       bool        `bson:"active" json:"active"`
	PasswordHash string      `bson:"password_hash" json:"-"`
	CreatedAt    time.Time   `bson:"created_at" json:"created_at"`
	UpdatedAt    time.Time   `bson:"updated_at" json:"updated_at"`
}

// InTenant returns the user with the tenant's time zone and locale where the
// user has none of their own. They are resolved when read, not copied when
// the user is created: a tenant that changes its default moves every user
// who never chose, and a user who chose keeps their choice.
func (u User) InTenant(st Settings) User {
	st = st.WithDefaults()
	if u.TimeZone == "" {
		u.TimeZone = st.TimeZone
	}
	if u.Locale == "" {
		u.Locale = st.Locale
	}
	return u
}

// Location is the user's time zone; UTC when it cannot be loaded (a name
// this machine's time zone database lacks).
func (u User) Location() *time.Location {
	if loc, err := time.LoadLocation(u.TimeZone); err == nil {
		return loc
	}
	return time.UTC
}

// The time zone and locale of a tenant that names none.
const (
	DefaultTimeZone = "UTC"
	DefaultLocale   = "en"
)

// NormalizeEmail trims and lower-cases an address; logins compare normalized forms.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// NormalizeName trims and collapses inner runs of white space to one space.
func NormalizeName(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// checkName validates a normalized display name.
func checkName(v *ValidationError, field, name string) {
	switch {
	case name == "":
		v.Add(field, "is required")
	case utf8.RuneCountInString(name) > MaxNameLength:
		v.Add(field, "must be at most %d characters", MaxNameLength)
	}
}

// checkEmail validates a normalized e-mail address.
func checkEmail(v *ValidationError, field, email string) {
	if email == "" {
		v.Add(field, "is required")
		return
	}
	if len(email) > MaxEmailLength {
		v.Add(field, "must be at most %d characters", MaxEmailLength)
		return
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndex(email, "@")+1:], ".") {
		v.Add(field, "must be an e-mail address such as ana@example.com")
	}
}

// CheckPassword validates a new password's length. Strength beyond length is the
// tenant's policy to add; length is what NIST SP 800-63B asks for.
func checkPassword(v *ValidationError, field, password string) {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLength:
		v.Add(field, "must be at least %d characters", MinPasswordLength)
	case len(password) > MaxPasswordLength:
		v.Add(field, "must be at most %d bytes", MaxPasswordLength)
	}
}

// checkTimeZone validates an IANA time zone name such as Asia/Shanghai.
func checkTimeZone(v *ValidationError, field, tz string) {
	if tz == "" || tz == "Local" {
		v.Add(field, "must be an IANA time zone name such as Asia/Shanghai")
		return
	}
	if _, err := time.LoadLocation(tz); err != nil {
		v.Add(field, "unknown time zone %q; use an IANA name such as Asia/Shanghai", tz)
	}
}

// NormalizeLocale returns the canonical BCP 47 form of a locale tag (zh-cn → zh-CN).
// It returns the input unchanged when it does not parse; checkLocale reports that.
func NormalizeLocale(s string) string {
	tag, err := language.Parse(strings.TrimSpace(s))
	if err != nil {
		return s
	}
	return tag.String()
}

func checkLocale(v *ValidationError, field, locale string) {
	if _, err := language.Parse(locale); err != nil || locale == "" || len(locale) > 35 {
		v.Add(field, "must be a BCP 47 language tag such as en or zh-CN")
	}
}

// Signup is the input that creates a tenant and its first admin.
type Signup struct {
	CompanyName string `json:"company_name"`
	Name        string `json:"name"`
	Email       string `json:"email"`
	Password    string `json:"password"`
	TimeZone    string `json:"time_zone"`
	Locale      string `json:"locale"`
	// DeviceID names the device of the first session; optional.
	DeviceID string `json:"device_id"`
}

// Normalize trims names, lower-cases the e-mail and fills defaults.
func (s *Signup) Normalize() {
	s.DeviceID = strings.TrimSpace(s.DeviceID)
	if s.DeviceID == "" {
		s.DeviceID = "signup"
	}
	s.CompanyName = NormalizeName(s.CompanyName)
	s.Name = NormalizeName(s.Name)
	s.Email = NormalizeEmail(s.Email)
	if s.TimeZone == "" {
		s.TimeZone = DefaultTimeZone
	}
	if s.Locale == "" {
		s.Locale = DefaultLocale
	}
	s.Locale = NormalizeLocale(s.Locale)
}

// Validate reports every invalid field of a normalized Signup.
func (s *Signup) Validate() error {
	v := &ValidationError{}
	checkName(v, "company_name", s.CompanyName)
	checkName(v, "name", s.Name)
	checkEmail(v, "email", s.Email)
	checkPassword(v, "password", s.Password)
	checkTimeZone(v, "time_zone", s.TimeZone)
	checkLocale(v, "locale", s.Locale)
	checkDeviceID(v, "device_id", s.DeviceID)
	return v.Err()
}

// Login is the input of a password sign-in from one device.
type Login struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	DeviceID string `json:"device_id"`
}

// Normalize lower-cases the e-mail and trims the device id.
func (l *Login) Normalize() {
	l.Email = NormalizeEmail(l.Email)
	l.DeviceID = strings.TrimSpace(l.DeviceID)
}

// Validate checks the shape only: a wrong password is not a validation error.
func (l *Login) Validate() error {
	v := &ValidationError{}
	if l.Email == "" {
		v.Add("email", "is required")
	} else if len(l.Email) > MaxEmailLength {
		v.Add("email", "must be at most %d characters", MaxEmailLength)
	}
	if l.Password == "" {
		v.Add("password", "is required")
	} else if len(l.Password) > MaxPasswordLength {
		v.Add("password", "must be at most %d bytes", MaxPasswordLength)
	}
	checkDeviceID(v, "device_id", l.DeviceID)
	return v.Err()
}

func checkDeviceID(v *ValidationError, field, id string) {
	switch {
	case id == "":
		v.Add(field, "is required: a stable identifier of the app install")
	case len(id) > MaxDeviceIDLength:
		v.Add(field, "must be at most %d characters", MaxDeviceIDLength)
	}
}

// NewUser is the input that creates a user in the caller's tenant.
type NewUser struct {
	Email     string `json:"email"`
	Name      string `json:"name"`
	Password  string `json:"password"`
	Role      Role   `json:"role"`
	TeamID    string `json:"team_id"`
	ManagerID string `json:"manager_id"`
	TimeZone  string `json:"time_zone"`
	Locale    string `json:"locale"`
}

// Normalize trims, lower-cases the e-mail and fills defaults.
func (n *NewUser) Normalize() {
	n.Email = NormalizeEmail(n.Email)
	n.Name = NormalizeName(n.Name)
	n.TeamID = strings.TrimSpace(n.TeamID)
	n.ManagerID = strings.TrimSpace(n.ManagerID)
	// No time zone or locale is the tenant's (see User.InTenant).
	n.TimeZone = strings.TrimSpace(n.TimeZone)
	if n.Locale = strings.TrimSpace(n.Locale); n.Locale != "" {
		n.Locale = NormalizeLocale(n.Locale)
	}
}

// Validate reports every invalid field of a normalized NewUser. Whether the
// caller may create this user is a separate question (CanCreateUser).
func (n *NewUser) Validate() error {
	v := &ValidationError{}
	checkEmail(v, "email", n.Email)
	checkName(v, "name", n.Name)
	checkPassword(v, "password", n.Password)
	if !n.Role.Valid() {
		v.Add("role", "must be one of %s", strings.Join(RoleNames, ", "))
	}
	if n.Role == RoleRep && n.TeamID == "" {
		v.Add("team_id", "is required for a rep")
	}
	if n.TimeZone != "" {
		checkTimeZone(v, "time_zone", n.TimeZone)
	}
	if n.Locale != "" {
		checkLocale(v, "locale", n.Locale)
	}
	return v.Err()
}

// UserPatch changes some fields of a user; nil fields stay as they are.
type UserPatch struct {
	Name      *string `json:"name"`
	Role      *Role   `json:"role"`
	TeamID    *string `json:"team_id"`
	ManagerID *string `json:"manager_id"`
	TimeZone  *string `json:"time_zone"`
	Locale    *string `json:"locale"`
	// QuietHours: an object sets them, {"start": "", "end": ""} clears them.
	QuietHours      *QuietHours `json:"quiet_hours"`
	Active          *bool       `json:"active"`
	Password        *string     `json:"password"`
	CurrentPassword *string     `json:"current_password"`
}

// Normalize trims names and ids in place.
func (p *UserPatch) Normalize() {
	trim := func(s *string, f func(string) string) {
		if s != nil {
			*s = f(*s)
		}
	}
	trim(p.Name, NormalizeName)
	trim(p.TeamID, strings.TrimSpace)
	trim(p.ManagerID, strings.TrimSpace)
	trim(p.TimeZone, strings.TrimSpace)
	trim(p.Locale, func(s string) string {
		if s = strings.TrimSpace(s); s != "" {
			s = NormalizeLocale(s)
		}
		return s
	})
}

// Empty reports whether the patch changes nothing.
func (p *UserPatch) Empty() bool {
	return p.Name == nil && p.Role == nil && p.TeamID == nil && p.ManagerID == nil &&
		p.TimeZone == nil && p.Locale == nil && p.Active == nil && p.Password == nil && p.QuietHours == nil
}

// Validate reports every invalid field of a normalized patch.
func (p *UserPatch) Validate() error {
	v := &ValidationError{}
	if p.Empty() {
		v.Add("", "names no field to change")
	}
	if p.Name != nil {
		checkName(v, "name", *p.Name)
	}
	if p.Role != nil && !p.Role.Valid() {
		v.Add("role", "must be one of %s", strings.Join(RoleNames, ", "))
	}
	// "" gives the choice back to the tenant (see User.InTenant).
	if p.TimeZone != nil && *p.TimeZone != "" {
		checkTimeZone(v, "time_zone", *p.TimeZone)
	}
	if p.Locale != nil && *p.Locale != "" {
		checkLocale(v, "locale", *p.Locale)
	}
	if q := p.QuietHours; q != nil && (q.Start != "" || q.End != "") {
		q.validate(v, "quiet_hours")
	}
	if p.Password != nil {
		checkPassword(v, "password", *p.Password)
	}
	return v.Err()
}

// Apply copies the patch's non-nil profile fields onto u and returns them by
// their stored names, for a partial update. Passwords are hashed by the caller,
// which sets PasswordHash itself.
func (p *UserPatch) Apply(u *User) map[string]any {
	changed := map[string]any{}
	set := func(name string, dst *string, v *string) {
		if v != nil {
			*dst = *v
			changed[name] = *v
		}
	}
	set("name", &u.Name, p.Name)
	set("team_id", &u.TeamID, p.TeamID)
	set("manager_id", &u.ManagerID, p.ManagerID)
	set("time_zone", &u.TimeZone, p.TimeZone)
	set("locale", &u.Locale, p.Locale)
	if p.Role != nil {
		u.Role = *p.Role
		changed["role"] = *p.Role
	}
	if p.Active != nil {
		u.Active = *p.Active
		changed["active"] = *p.Active
	}
	if q := p.QuietHours; q != nil {
		if q.Start == "" && q.End == "" {
			u.QuietHours = nil
			changed["quiet_hours"] = nil
		} else {
			u.QuietHours = q
			changed["quiet_hours"] = *q
		}
	}
	return changed
}

// NewTeam is the input that creates a team.
type NewTeam struct {
	Name      string `json:"name"`
	ManagerID string `json:"manager_id"`
}

// Normalize trims the name and manager id.
func (n *NewTeam) Normalize() {
	n.Name = NormalizeName(n.Name)
	n.ManagerID = strings.TrimSpace(n.ManagerID)
}

// Validate reports every invalid field of a normalized NewTeam.
func (n *NewTeam) Validate() error {
	v := &ValidationError{}
	checkName(v, "name", n.Name)
	return v.Err()
}
