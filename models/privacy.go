package models

// Erasure of a customer's personal data (PIPL art. 47, GDPR art. 17). What
// identifies a person goes: names, ways to reach them, addresses, ID numbers,
// birth dates, and free text, which may name anyone. What reports count stays:
// kinds, stages, regions, dates, amounts, points, ratings, owners. Each record
// type says below what it erases, and PersonalFields lists the same columns
// for the version history, whose old and new values must go too.

// Erased is what stands in for an erased name or title, which may not be empty.
const Erased = "[erased]"

// PersonalFields are, per collection, the JSON fields an erasure clears.
var PersonalFields = map[string][]string{
	"customers": {"name", "company_name", "title", "address", "phones", "emails", "social",
		"gender", "birth_date", "national_id", "product_needs", "service_needs", "custom_fields", "duplicate"},
	"contacts":        {"name", "title", "phones", "emails", "social"},
	"interactions":    {"content", "outcome", "check_in", "next_step"},
	"tasks":           {"title", "notes"},
	"orders":          {"note"},
	"tickets":         {"title", "description", "comments"},
	"surveys":         {"comment"},
	"loyalty_entries": {"reason"},
	"payments":        {},
	"notifications":   {"title", "body"},
	"conflicts":       {"server_value", "device_value"},
}

// ErasePersonalData clears what identifies the customer. The derived search
// and duplicate keys are built from names, phones and e-mails, so they go too;
// the customer number, an internal reference, stays.
func (c *Customer) ErasePersonalData() {
	kind, industry, size, region := c.Kind, c.Industry, c.CompanySize, c.Region
	ctype, source, need, tier, stage, limit, tags := c.CustomerType, c.Source, c.NeedType, c.ValueTier, c.Stage, c.CreditLimit, c.Tags
	c.CustomerFields = CustomerFields{
		Kind: kind, Name: Erased, Industry: industry, CompanySize: size, Region: region,
		CustomerType: ctype, Source: source, NeedType: need, ValueTier: tier, Stage: stage, CreditLimit: limit, Tags: tags,
		ContactPoints: ContactPoints{Phones: []Phone{}, Emails: []Email{}, Social: []Social{}},
		CustomFields:  map[string]any{},
	}
	c.NationalIDSealed = ""
	c.DedupeKeys, c.SearchKeys = []string{}, []string{}
	c.Duplicate = nil
}

// ErasePersonalData clears a contact person.
func (c *Contact) ErasePersonalData() {
	c.Name, c.Title = Erased, ""
	c.ContactPoints = ContactPoints{Phones: []Phone{}, Emails: []Email{}, Social: []Social{}}
}

// ErasePersonalData clears what was said and where: the check-in's place is
// the customer's address. Channel, time and duration stay for activity reports.
func (i *Interaction) ErasePersonalData() {
	i.Content, i.Outcome = "", ""
	i.CheckIn, i.NextStep = nil, nil
}

// ErasePersonalData clears a task's text; its due time and status stay.
func (t *Task) ErasePersonalData() { t.Title, t.Notes = Erased, "" }

// ErasePersonalData clears an order's note; items, amounts and dates stay.
func (o *Order) ErasePersonalData() { o.Note = "" }

// ErasePersonalData clears a ticket's text and comments; type, priority,
// status and SLA times stay for service reports.
func (t *Ticket) ErasePersonalData() {
	t.Title, t.Description = Erased, ""
	for i := range t.Comments {
		t.Comments[i].Body = ""
	}
}

// ErasePersonalData clears a survey's comment; the ratings stay.
func (s *Survey) ErasePersonalData() { s.Comment = "" }

// ErasePersonalData clears the reason text of a points entry; points stay.
func (e *LoyaltyEntry) ErasePersonalData() { e.Reason = "" }

// ErasePersonalData: a payment holds amounts, dates and the bank's reference,
// which bookkeeping must keep.
func (p *Payment) ErasePersonalData() {}

// ErasePersonalData clears an inbox entry about the customer: its text named
// the task or the customer.
func (n *Notification) ErasePersonalData() { n.Title, n.Body = Erased, "" }
