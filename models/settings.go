package models

import (
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Settings are a tenant's CRM rules, changed by its admins (GET/PATCH
// /v1/settings). The zero value of every field means "use the default", so a
// tenant created before a setting existed behaves sensibly.
type Settings struct {
	CustomerNumber NumberPattern `bson:"customer_number" json:"customer_number"`
	// PhoneRegion is the ISO 3166 country assumed for phone numbers written
	// without a country code.
	PhoneRegion string `bson:"phone_region" json:"phone_region"`
	// Currency is the ISO 4217 code of orders that name none.
	Currency string `bson:"currency" json:"currency"`
	// PoolReclaimDays returns a customer to the public pool when its owner has
	// logged no interaction with it for this many days; 0 turns it off.
	PoolReclaimDays int `bson:"pool_reclaim_days" json:"pool_reclaim_days"`
	// LoyaltyTiers are the membership tiers by points balance, lowest first.
	LoyaltyTiers []LoyaltyTier `bson:"loyalty_tiers" json:"loyalty_tiers"`
	// TicketSLAHours is the time to resolve a ticket, by priority.
	TicketSLAHours map[string]int `bson:"ticket_sla_hours" json:"ticket_sla_hours"`
	// SupportTeamID, when set, receives new tickets round-robin among its active
	// members; otherwise a ticket goes to its customer's owner.
	SupportTeamID string `bson:"support_team_id" json:"support_team_id"`
	// CustomFields are the tenant's own customer fields.
	CustomFields []CustomFieldDef `bson:"custom_fields" json:"custom_fields"`
	// Reminders are the rules of escalations, SLA warnings and digests.
	Reminders ReminderSettings `bson:"reminders" json:"reminders"`
	// TimeZone and Locale are the tenant's defaults: every user who has not
	// chosen their own gets reminders in them (see User.InTenant). Signup sets
	// them from the first admin's.
	TimeZone string `bson:"time_zone" json:"time_zone"`
	Locale   string `bson:"locale" json:"locale"`
}

// ReminderSettings are a tenant's rules for the notifications the server
// sends on its own.
type ReminderSettings struct {
	// OverdueAfterMinutes escalates an open task to the assignee's manager this
	// long after its due time (default 60).
	OverdueAfterMinutes int `bson:"overdue_after_minutes" json:"overdue_after_minutes"`
	// SecondEscalationAfterMinutes, when set, escalates it once more, to the
	// manager's manager, this long after the due time; 0 turns it off.
	SecondEscalationAfterMinutes int `bson:"second_escalation_after_minutes" json:"second_escalation_after_minutes"`
	// SLAWarningMinutes warns a ticket's assignee this long before its SLA
	// runs out (default 60).
	SLAWarningMinutes int `bson:"sla_warning_minutes" json:"sla_warning_minutes"`
	// DigestTime is when managers get their daily digest, HH:MM in each
	// manager's own time zone (default 08:00).
	DigestTime string `bson:"digest_time" json:"digest_time"`
}

// DefaultDigestTime is when managers get their digest unless the tenant says.
const DefaultDigestTime = "08:00"

// LoyaltyTier is reached when a customer's points balance is at least MinPoints.
type LoyaltyTier struct {
	Name      string `bson:"name" json:"name"`
	MinPoints int64  `bson:"min_points" json:"min_points"`
}

// WithDefaults fills every unset setting with its default.
func (s Settings) WithDefaults() Settings {
	if s.CustomerNumber.Digits == 0 {
		s.CustomerNumber = DefaultNumberPattern
	}
	if s.PhoneRegion == "" {
		s.PhoneRegion = DefaultPhoneRegion
	}
	if s.Currency == "" {
		s.Currency = "CNY"
	}
	if s.LoyaltyTiers == nil {
		s.LoyaltyTiers = []LoyaltyTier{{"member", 0}, {"silver", 1000}, {"gold", 5000}, {"platinum", 20000}}
	}
	sla := map[string]int{PriorityUrgent: 4, PriorityHigh: 24, PriorityNormal: 72, PriorityLow: 168}
	for k, v := range s.TicketSLAHours {
		sla[k] = v
	}
	s.TicketSLAHours = sla
	if s.CustomFields == nil {
		s.CustomFields = []CustomFieldDef{}
	}
	if s.Reminders.OverdueAfterMinutes == 0 {
		s.Reminders.OverdueAfterMinutes = 60
	}
	if s.Reminders.SLAWarningMinutes == 0 {
		s.Reminders.SLAWarningMinutes = 60
	}
	if s.Reminders.DigestTime == "" {
		s.Reminders.DigestTime = DefaultDigestTime
	}
	if s.TimeZone == "" {
		s.TimeZone = DefaultTimeZone
	}
	if s.Locale == "" {
		s.Locale = DefaultLocale
	}
	s.Locale = NormalizeLocale(s.Locale)
	return s
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// Validate checks settings after defaults are applied.
func (s Settings) Validate() error {
	v := &ValidationError{}
	s.CustomerNumber.validate(v, "customer_number")
	if !ValidRegion(s.PhoneRegion) {
		v.Add("phone_region", "must be an ISO 3166 country code such as CN or US")
	}
	if !currencyCode.MatchString(s.Currency) {
		v.Add("currency", "must be an ISO 4217 code such as CNY")
	}
	checkTimeZone(v, "time_zone", s.TimeZone)
	checkLocale(v, "locale", s.Locale)
	if s.PoolReclaimDays < 0 || s.PoolReclaimDays > 3650 {
		v.Add("pool_reclaim_days", "must be from 0 (off) to 3650")
	}
	for i, t := range s.LoyaltyTiers {
		f := "loyalty_tiers[" + strconv.Itoa(i) + "]"
		checkName(v, f+".name", t.Name)
		if i == 0 && t.MinPoints != 0 {
			v.Add(f+".min_points", "the first tier must start at 0")
		}
		if i > 0 && t.MinPoints <= s.LoyaltyTiers[i-1].MinPoints {
			v.Add(f+".min_points", "must be above the previous tier's")
		}
	}
	for p, h := range s.TicketSLAHours {
		if !slices.Contains(TicketPriorities, p) {
			v.Add("ticket_sla_hours."+p, "is not a priority; use one of %v", TicketPriorities)
		} else if h < 1 || h > 24*365 {
			v.Add("ticket_sla_hours."+p, "must be from 1 to 8760 hours")
		}
	}
	seen := map[string]bool{}
	for i, d := range s.CustomFields {
		f := "custom_fields[" + strconv.Itoa(i) + "]"
		d.validate(v, f)
		if seen[d.Key] {
			v.Add(f+".key", "%q is defined twice", d.Key)
		}
		seen[d.Key] = true
	}
	r := s.Reminders
	if r.OverdueAfterMinutes < 1 || r.OverdueAfterMinutes > 7*24*60 {
		v.Add("reminders.overdue_after_minutes", "must be from 1 to 10080 (a week)")
	}
	if r.SecondEscalationAfterMinutes != 0 && (r.SecondEscalationAfterMinutes <= r.OverdueAfterMinutes || r.SecondEscalationAfterMinutes > 14*24*60) {
		v.Add("reminders.second_escalation_after_minutes", "must be 0 (off) or later than overdue_after_minutes, at most 20160")
	}
	if r.SLAWarningMinutes < 1 || r.SLAWarningMinutes > 7*24*60 {
		v.Add("reminders.sla_warning_minutes", "must be from 1 to 10080")
	}
	if _, err := time.Parse("15:04", r.DigestTime); err != nil {
		v.Add("reminders.digest_time", "must be a time of day such as 08:00")
	}
	if len(s.CustomFields) > 100 {
		v.Add("custom_fields", "at most 100 custom fields")
	}
	return v.Err()
}

// TierFor returns the tier reached by balance.
func (s Settings) TierFor(balance int64) string {
	tier := ""
	for _, t := range s.LoyaltyTiers {
		if balance >= t.MinPoints {
			tier = t.Name
		}
	}
	return tier
}

// Custom field types.
const (
	FieldText        = "text"
	FieldNumber      = "number"
	FieldDate        = "date"
	FieldChoice      = "choice"
	FieldMultiChoice = "multi_choice"
)

// CustomFieldDef is one tenant-defined customer field.
type CustomFieldDef struct {
	Key      string   `bson:"key" json:"key"`
	Label    string   `bson:"label" json:"label"`
	Type     string   `bson:"type" json:"type"`
	Options  []string `bson:"options,omitempty" json:"options,omitempty"`
	Required bool     `bson:"required" json:"required"`
}

var fieldKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

func (d CustomFieldDef) validate(v *ValidationError, f string) {
	if !fieldKey.MatchString(d.Key) {
		v.Add(f+".key", "must be 1 to 40 of a-z, 0-9 and _, starting with a letter")
	}
	checkName(v, f+".label", d.Label)
	switch d.Type {
	case FieldText, FieldNumber, FieldDate:
		if len(d.Options) > 0 {
			v.Add(f+".options", "only choice fields have options")
		}
	case FieldChoice, FieldMultiChoice:
		if len(d.Options) == 0 {
			v.Add(f+".options", "a choice field needs at least one option")
		}
	default:
		v.Add(f+".type", "must be one of text, number, date, choice, multi_choice")
	}
}

// MaxCustomTextLength bounds a text custom field's value.
const MaxCustomTextLength = 2000

// CheckCustomFields validates and normalizes values against the tenant's
// definitions: unknown keys, wrong types, unknown options and missing required
// fields are all reported. Dates are normalized to ISO 8601, numbers to float64.
func CheckCustomFields(defs []CustomFieldDef, values map[string]any, v *ValidationError) map[string]any {
	out := map[string]any{}
	byKey := map[string]CustomFieldDef{}
	for _, d := range defs {
		byKey[d.Key] = d
	}
	for k, val := range values {
		f := "custom_fields." + k
		d, ok := byKey[k]
		if !ok {
			v.Add(f, "is not a custom field of this tenant (see GET /v1/settings)")
			continue
		}
		if val == nil {
			continue // null clears the field
		}
		if norm, ok := checkCustomValue(d, val, v, f); ok {
			out[k] = norm
		}
	}
	for _, d := range defs {
		if _, ok := out[d.Key]; d.Required && !ok {
			v.Add("custom_fields."+d.Key, "is required")
		}
	}
	return out
}

func checkCustomValue(d CustomFieldDef, val any, v *ValidationError, f string) (any, bool) {
	switch d.Type {
	case FieldText:
		s, ok := val.(string)
		if !ok || utf8.RuneCountInString(s) > MaxCustomTextLength {
			v.Add(f, "must be text of at most %d characters", MaxCustomTextLength)
			return nil, false
		}
		return NormalizeText(s), true
	case FieldNumber:
		if n, ok := val.(float64); ok {
			return n, true
		}
		v.Add(f, "must be a number")
	case FieldDate:
		s, _ := val.(string)
		date, err := NormalizeDate(s)
		if err != nil {
			v.Add(f, "must be a date such as 2026-01-05")
			return nil, false
		}
		return date, true
	case FieldChoice:
		s, _ := val.(string)
		if !slices.Contains(d.Options, s) {
			v.Add(f, "must be one of %v", d.Options)
			return nil, false
		}
		return s, true
	case FieldMultiChoice:
		list, ok := val.([]any)
		if !ok {
			v.Add(f, "must be a list of options from %v", d.Options)
			return nil, false
		}
		out := []string{}
		for _, item := range list {
			s, _ := item.(string)
			if !slices.Contains(d.Options, s) {
				v.Add(f, "must be a list of options from %v", d.Options)
				return nil, false
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out, true
	}
	return nil, false
}

// SLADue returns when a ticket of priority opened at t must be resolved.
func (s Settings) SLADue(priority string, t time.Time) time.Time {
	return t.Add(time.Duration(s.TicketSLAHours[priority]) * time.Hour)
}
