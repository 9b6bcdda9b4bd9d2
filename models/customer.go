package models

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// Customer kinds.
const (
	KindCompany = "company"
	KindPerson  = "person"
)

// Lifecycle stages of a customer, in the order a sale usually moves through them;
// at_risk and churned can follow any stage.
var Stages = []string{"lead", "prospect", "opportunity", "customer", "loyal", "at_risk", "churned"}

// Enumerations of customer classification. Tenants extend them with tags and
// custom fields; these are the values reports group by.
var (
	CustomerTypes  = []string{"normal", "vip", "key_account", "partner"}
	SourceChannels = []string{"online", "offline", "referral", "event", "advertising", "cold_call", "import", "other"}
	NeedTypes      = []string{"price_sensitive", "brand_loyal", "quality_first", "service_first", "convenience", "other"}
	ValueTiers     = []string{"", "champions", "loyal", "potential", "new", "at_risk", "hibernating", "lost"}
	Genders        = []string{"", "female", "male", "other"}
	SocialNetworks = []string{"wechat", "linkedin", "twitter", "weibo", "facebook", "whatsapp", "other"}
)

// Limits on CRM text fields.
const (
	MaxShortText = 200
	MaxLongText  = 10_000
	MaxListItems = 20
	MaxTags      = 50
)

// Address is a postal address.
type Address struct {
	Country    string `bson:"country" json:"country"`
	Province   string `bson:"province" json:"province"`
	City       string `bson:"city" json:"city"`
	District   string `bson:"district" json:"district"`
	Street     string `bson:"street" json:"street"`
	PostalCode string `bson:"postal_code" json:"postal_code"`
}

// Phone is a labelled number; Number is stored in E.164.
type Phone struct {
	Label  string `bson:"label" json:"label"`
	Number string `bson:"number" json:"number"`
}

// Email is a labelled address, stored lower-case.
type Email struct {
	Label   string `bson:"label" json:"label"`
	Address string `bson:"address" json:"address"`
}

// Social is an account on a social network.
type Social struct {
	Network string `bson:"network" json:"network"`
	Handle  string `bson:"handle" json:"handle"`
}

// ContactPoints are the ways to reach a customer or a contact.
type ContactPoints struct {
	Phones []Phone  `bson:"phones" json:"phones"`
	Emails []Email  `bson:"emails" json:"emails"`
	Social []Social `bson:"social" json:"social"`
}

// CustomerFields are what clients write on a customer.
type CustomerFields struct {
	Kind        string  `bson:"kind" json:"kind"`
	Name        string  `bson:"name" json:"name"`
	CompanyName string  `bson:"company_name" json:"company_name"`
	Title       string  `bson:"title" json:"title"`
	Industry    string  `bson:"industry" json:"industry"`
	CompanySize string  `bson:"company_size" json:"company_size"`
	Region      string  `bson:"region" json:"region"`
	Address     Address `bson:"address" json:"address"`

	ContactPoints `bson:",inline"`

	Gender    string `bson:"gender" json:"gender"`
	BirthDate string `bson:"birth_date" json:"birth_date"`
	// NationalID is written in clear and read back masked (admins see it whole);
	// it is stored only encrypted, in NationalIDSealed.
	NationalID string `bson:"-" json:"national_id"`

	CustomerType string   `bson:"customer_type" json:"customer_type"`
	Source       string   `bson:"source" json:"source"`
	NeedType     string   `bson:"need_type" json:"need_type"`
	ProductNeeds string   `bson:"product_needs" json:"product_needs"`
	ServiceNeeds string   `bson:"service_needs" json:"service_needs"`
	Tags         []string `bson:"tags" json:"tags"`
	ValueTier    string   `bson:"value_tier" json:"value_tier"`
	Stage        string   `bson:"stage" json:"stage"`
	// CreditLimit, in minor units of the tenant currency; 0 means none agreed.
	CreditLimit  int64          `bson:"credit_limit" json:"credit_limit"`
	CustomFields map[string]any `bson:"custom_fields" json:"custom_fields"`
}

// Transition is one move between states: a customer's lifecycle stage, a
// ticket's status.
type Transition struct {
	From string    `bson:"from" json:"from"`
	To   string    `bson:"to" json:"to"`
	By   string    `bson:"by" json:"by"`
	At   time.Time `bson:"at" json:"at"`
}

// OwnerChange is one move of a customer between owners or to and from the pool.
type OwnerChange struct {
	From   string    `bson:"from" json:"from"`
	To     string    `bson:"to" json:"to"`
	By     string    `bson:"by" json:"by"`
	At     time.Time `bson:"at" json:"at"`
	Reason string    `bson:"reason" json:"reason"`
}

// DuplicateFlag marks a customer that looks like others of the tenant.
type DuplicateFlag struct {
	CandidateIDs []string `bson:"candidate_ids" json:"candidate_ids"`
	// Reasons name what matched: "phone +8613800138000", "email a@b.c", "company acme".
	Reasons []string `bson:"reasons" json:"reasons"`
}

// Customer is a company or a person the tenant sells to.
type Customer struct {
	Meta           `bson:",inline"`
	CustomerFields `bson:",inline"`
	// Number is the customer number (C2026-000123-8), assigned by the server.
	Number string `bson:"number" json:"number"`
	// ExternalRef is the customer's number in the system it was imported
	// from, kept so people and later imports can find it.
	ExternalRef  string        `bson:"external_ref" json:"external_ref"`
	StageHistory []Transition  `bson:"stage_history" json:"stage_history"`
	OwnerHistory []OwnerChange `bson:"owner_history" json:"owner_history"`
	// AssignedAt is when the current owner got the customer; pool reclaim
	// counts idle days from it or from the last interaction, whichever is later.
	AssignedAt *time.Time `bson:"assigned_at" json:"assigned_at"`
	// Duplicate is set when the customer was created or changed while matching others.
	Duplicate *DuplicateFlag `bson:"duplicate" json:"duplicate"`
	// MergedInto is the customer this one was merged into; a device holding
	// this id should redirect there.
	MergedInto        string     `bson:"merged_into" json:"merged_into,omitempty"`
	LastInteractionAt *time.Time `bson:"last_interaction_at" json:"last_interaction_at"`
	Balance           []Money    `bson:"balance" json:"balance"`
	Credit            *Credit    `bson:"credit" json:"credit"`
	Loyalty           Loyalty    `bson:"loyalty" json:"loyalty"`

	NationalIDSealed string `bson:"national_id_sealed" json:"-"`
	// DedupeKeys and SearchKeys are derived by Prepare; queries match on them.
	DedupeKeys []string `bson:"dedupe_keys" json:"-"`
	SearchKeys []string `bson:"search_keys" json:"-"`
}

// Loyalty is the derived state of a customer's points ledger.
type Loyalty struct {
	// Balance is the sum of the customer's stored ledger entries, as of the
	// last loyalty write to the customer (see Settled).
	Balance int64  `bson:"balance" json:"balance"`
	Tier    string `bson:"tier" json:"tier"`
	// Held are the entries being written, with the points they take from
	// the balance (redemptions, expiries, negative adjustments; 0 for an
	// entry that adds points): spoken for, so that two of them cannot both
	// take the last points, but not yet out of Balance, which counts only
	// stored entries. A hold stays until a settle counts its entry, so a
	// customer whose balance may not count one of its entries has one.
	Held []PointsHold `bson:"held,omitempty" json:"held,omitempty"`
}

// PointsHold is what one ledger entry being written takes from a balance.
type PointsHold struct {
	EntryID string    `bson:"entry_id" json:"entry_id"`
	Points  int64     `bson:"points" json:"points"`
	At      time.Time `bson:"at" json:"at"`
}

// Available is the balance less the points held: what an entry may take.
func (l Loyalty) Available() int64 {
	n := l.Balance
	for _, h := range l.Held {
		n -= h.Points
	}
	return n
}

// Settled derives the loyalty state from ledger, the customer's stored
// entries: the balance is their sum and the tier follows it. A hold goes
// once its entry is stored (the balance counts it now), once it was taken
// before expired (its entry can no longer be stored), and when it is the
// hold of release (whose write is over, stored or refused); the others stay.
func (l Loyalty) Settled(ledger []LoyaltyEntry, release string, expired time.Time, st Settings) Loyalty {
	var out Loyalty
	stored := make(map[string]bool, len(ledger))
	for i := range ledger {
		out.Balance += ledger[i].Delta()
		stored[ledger[i].ID] = true
	}
	out.Tier = st.TierFor(out.Balance)
	for _, h := range l.Held {
		if !stored[h.EntryID] && h.EntryID != release && h.At.After(expired) {
			out.Held = append(out.Held, h)
		}
	}
	return out
}

// Prepare normalizes the client-written fields in place and validates them
// against the tenant's settings, then derives the dedupe and search keys.
func (c *Customer) Prepare(st Settings) error {
	v := &ValidationError{}
	f := &c.CustomerFields
	f.Name = NormalizeText(f.Name)
	checkName(v, "name", f.Name)
	for _, t := range []struct {
		field string
		p     *string
	}{
		{"company_name", &f.CompanyName}, {"title", &f.Title}, {"industry", &f.Industry},
		{"company_size", &f.CompanySize}, {"region", &f.Region},
		{"address.country", &f.Address.Country}, {"address.province", &f.Address.Province},
		{"address.city", &f.Address.City}, {"address.district", &f.Address.District},
		{"address.street", &f.Address.Street}, {"address.postal_code", &f.Address.PostalCode},
	} {
		*t.p = shortText(v, t.field, *t.p)
	}
	if f.Kind == "" {
		f.Kind = DefaultKind(f.Name, f.CompanyName)
	}
	oneOf(v, "kind", f.Kind, CustomerKinds)
	if f.Kind == KindCompany && f.CompanyName == "" {
		f.CompanyName = f.Name
	}
	f.ContactPoints.prepare(v, "", st.PhoneRegion)
	if f.Kind == KindCompany && (f.Gender != "" || f.BirthDate != "" || f.NationalID != "") {
		v.Add("kind", "gender, birth_date and national_id are for person customers")
	}
	oneOf(v, "gender", f.Gender, Genders)
	if f.BirthDate != "" {
		d, err := NormalizeDate(f.BirthDate)
		if err != nil {
			v.Add("birth_date", "%s", err.Error())
		}
		f.BirthDate = d
	}
	f.NationalID = strings.ToUpper(NormalizeText(f.NationalID))
	if f.NationalID != "" && (len(f.NationalID) < 6 || len(f.NationalID) > 32) {
		v.Add("national_id", "must be 6 to 32 characters")
	}
	if f.CustomerType == "" {
		f.CustomerType = "normal"
	}
	if f.Stage == "" {
		f.Stage = "lead"
	}
	oneOf(v, "customer_type", f.CustomerType, CustomerTypes)
	if f.Source != "" {
		oneOf(v, "source", f.Source, SourceChannels)
	}
	if f.NeedType != "" {
		oneOf(v, "need_type", f.NeedType, NeedTypes)
	}
	oneOf(v, "value_tier", f.ValueTier, ValueTiers)
	oneOf(v, "stage", f.Stage, Stages)
	f.ProductNeeds = longText(v, "product_needs", f.ProductNeeds)
	f.ServiceNeeds = longText(v, "service_needs", f.ServiceNeeds)
	f.Tags = prepareTags(v, "tags", f.Tags)
	if f.CreditLimit < 0 {
		v.Add("credit_limit", "must not be negative")
	}
	f.CustomFields = CheckCustomFields(st.CustomFields, f.CustomFields, v)
	if err := v.Err(); err != nil {
		return err
	}
	c.DedupeKeys = c.dedupeKeys()
	c.SearchKeys = c.searchKeys()
	return nil
}

// DefaultKind is the kind of a customer written without one: a company,
// unless it names a company other than itself, for then it is a person who
// works there (王伟 at 远景贸易有限公司). The two names are compared as
// company keys, so "North Pumps" of "North Pumps Ltd" is still a company.
//
// The kind decides the customer's duplicate keys (see dedupeKeys): a company
// is found again by its company name, a person by phone, e-mail or name at
// the company, never by the company alone. Taking people for companies made
// everyone at one company a duplicate of the first (issue #23, item 9).
func DefaultKind(name, companyName string) string {
	if company := CompanyKey(companyName); company != "" && company != CompanyKey(name) {
		return KindPerson
	}
	return KindCompany
}

// dedupeKeys are the normalized facts two records of one customer share: any
// phone, any e-mail, the company (for companies) or the company plus the person's
// name (for people).
func (c *Customer) dedupeKeys() []string {
	keys := c.ContactPoints.dedupeKeys()
	company := CompanyKey(c.CompanyName)
	switch {
	case c.Kind == KindCompany && company != "":
		keys = append(keys, "company:"+company)
	case c.Kind == KindPerson && company != "":
		keys = append(keys, "person:"+strings.ToLower(strings.ReplaceAll(c.Name, " ", ""))+"@"+company)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// LookupKeys are the keys a customer is found by in the customer key index:
// its duplicate keys, and its number and external reference (which other
// spreadsheets name it by: an import of orders or contacts). The last two
// carry prefixes no duplicate key has, so they never count as duplicates.
func (c *Customer) LookupKeys() []string {
	keys := slices.Clone(c.DedupeKeys)
	if c.Number != "" {
		keys = append(keys, NumberKey(c.Number))
	}
	if c.ExternalRef != "" {
		keys = append(keys, ExternalRefKey(c.ExternalRef))
	}
	return keys
}

// NumberKey is the lookup key of a customer number.
func NumberKey(number string) string { return "number:" + strings.ToUpper(NormalizeText(number)) }

// ExternalRefKey is the lookup key of a reference in the system a customer
// was imported from.
func ExternalRefKey(ref string) string { return "ref:" + NormalizeText(ref) }

// searchKeys are what look-up matches: lower-cased name, company, number,
// e-mails, and phones both in E.164 and as the digits people type.
func (c *Customer) searchKeys() []string {
	keys := []string{strings.ToLower(c.Name), strings.ToLower(c.CompanyName)}
	if c.Number != "" {
		keys = append(keys, strings.ToLower(c.Number))
	}
	for _, e := range c.Emails {
		keys = append(keys, e.Address)
	}
	for _, p := range c.Phones {
		keys = append(keys, p.Number)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if len(keys) > 0 && keys[0] == "" {
		keys = keys[1:]
	}
	return keys
}

// RefreshSearchKeys recomputes the search keys after a server-side change such
// as the customer number's assignment.
func (c *Customer) RefreshSearchKeys() { c.SearchKeys = c.searchKeys() }

// prepare normalizes phones to E.164 and e-mails to lower case, dropping exact
// repeats, and validates labels and networks. prefix is prepended to field names.
func (cp *ContactPoints) prepare(v *ValidationError, prefix, region string) {
	if len(cp.Phones) > MaxListItems || len(cp.Emails) > MaxListItems || len(cp.Social) > MaxListItems {
		v.Add(prefix+"phones", "at most %d phones, e-mails and social accounts each", MaxListItems)
		return
	}
	phones := []Phone{}
	for i, p := range cp.Phones {
		f := prefix + "phones[" + strconv.Itoa(i) + "]"
		p.Label = shortText(v, f+".label", strings.ToLower(p.Label))
		n, err := NormalizePhone(p.Number, region)
		if err != nil {
			v.Add(f+".number", "%s", err.Error())
			continue
		}
		p.Number = n
		if !slices.ContainsFunc(phones, func(q Phone) bool { return q.Number == n }) {
			phones = append(phones, p)
		}
	}
	cp.Phones = phones
	emails := []Email{}
	for i, e := range cp.Emails {
		f := prefix + "emails[" + strconv.Itoa(i) + "]"
		e.Label = shortText(v, f+".label", strings.ToLower(e.Label))
		e.Address = NormalizeEmail(width.Fold.String(e.Address))
		checkEmail(v, f+".address", e.Address)
		if !slices.ContainsFunc(emails, func(q Email) bool { return q.Address == e.Address }) {
			emails = append(emails, e)
		}
	}
	cp.Emails = emails
	social := []Social{}
	for i, s := range cp.Social {
		f := prefix + "social[" + strconv.Itoa(i) + "]"
		s.Network = strings.ToLower(NormalizeText(s.Network))
		oneOf(v, f+".network", s.Network, SocialNetworks)
		s.Handle = shortText(v, f+".handle", s.Handle)
		if s.Handle == "" {
			v.Add(f+".handle", "is required")
		}
		social = append(social, s)
	}
	cp.Social = social
}

func (cp *ContactPoints) dedupeKeys() []string {
	var keys []string
	for _, p := range cp.Phones {
		keys = append(keys, "phone:"+p.Number)
	}
	for _, e := range cp.Emails {
		keys = append(keys, "email:"+e.Address)
	}
	return keys
}

// DuplicateReason turns a dedupe key into words for the duplicate flag.
func DuplicateReason(key string) string {
	kind, value, _ := strings.Cut(key, ":")
	return kind + " " + value
}

func oneOf(v *ValidationError, field, value string, allowed []string) {
	if !slices.Contains(allowed, value) {
		shown := slices.DeleteFunc(slices.Clone(allowed), func(s string) bool { return s == "" })
		v.Add(field, "must be one of %s", strings.Join(shown, ", "))
	}
}

func shortText(v *ValidationError, field, s string) string {
	s = NormalizeText(s)
	if utf8.RuneCountInString(s) > MaxShortText {
		v.Add(field, "must be at most %d characters", MaxShortText)
	}
	return s
}

// longText trims free text but keeps its line breaks.
func longText(v *ValidationError, field, s string) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > MaxLongText {
		v.Add(field, "must be at most %d characters", MaxLongText)
	}
	return s
}

func prepareTags(v *ValidationError, field string, tags []string) []string {
	out := []string{}
	for i, t := range tags {
		t = shortText(v, field+"["+strconv.Itoa(i)+"]", strings.ToLower(t))
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > MaxTags {
		v.Add(field, "at most %d tags", MaxTags)
	}
	return out
}

// MaskNationalID shows the first three and last four characters of an ID number.
func MaskNationalID(id string) string {
	if id == "" {
		return ""
	}
	r := []rune(id)
	if len(r) <= 7 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
}

// MaskPhone hides the middle of a phone number, as exports show it to
// non-admins: +86 138****8000 keeps the country code, the carrier prefix and
// the last four digits.
func MaskPhone(number string) string {
	r := []rune(number)
	if len(r) <= 8 {
		return strings.Repeat("*", len(r))
	}
	keep := min(6, len(r)-8)
	return string(r[:keep]) + strings.Repeat("*", len(r)-keep-4) + string(r[len(r)-4:])
}

// MaskEmail keeps the first letter and the domain: x***@example.cn.
func MaskEmail(address string) string {
	local, domain, ok := strings.Cut(address, "@")
	if !ok || local == "" {
		return strings.Repeat("*", len([]rune(address)))
	}
	return string([]rune(local)[:1]) + "***@" + domain
}
