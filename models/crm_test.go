package models

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNormalizePhoneFormatsOfOneNumber(t *testing.T) {
	cases := []struct{ raw, region, want string }{
		{"138 0013 8000", "CN", "+8613800138000"},
		{"138-0013-8000", "CN", "+8613800138000"},
		{"+86 138 0013 8000", "US", "+8613800138000"},
		{"0086 13800138000", "CN", "+8613800138000"},
		{"１３８００１３８０００", "CN", "+8613800138000"}, // full-width digits
		{"(020) 8888 6666", "CN", "+862088886666"},
		{"(415) 555-2671", "US", "+14155552671"},
		{"0755 8888 6666", "CN", "+8675588886666"},
		{"400 820 8820", "CN", "+864008208820"},
		{"+44 20 7946 0958", "CN", "+442079460958"},
	}
	for _, c := range cases {
		got, err := NormalizePhone(c.raw, c.region)
		if err != nil || got != c.want {
			t.Errorf("NormalizePhone(%q, %s) = %q, %v; want %q", c.raw, c.region, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "hello", "12", "+86 1380013800012345",
		"0 0000 0000", "+8600000000", "000 0000 0000", // zeros: once kept, each parse dropped a 0
		"123 4567 8901", "+86 12345678", // no Chinese mobile or area code starts so
	} {
		if got, err := NormalizePhone(bad, "CN"); err == nil {
			t.Errorf("NormalizePhone(%q) = %q, want an error", bad, got)
		}
	}
}

func TestCompanyKeyIgnoresLegalFormAndWidth(t *testing.T) {
	groups := [][]string{
		{"Acme Co., Ltd.", "ACME Inc", "acme", "Ａｃｍｅ Corporation", "Acme Company Limited"},
		{"华为技术有限公司", "华为技术", "华为技术股份有限公司", " 华为技术有限责任公司 "},
	}
	for _, g := range groups {
		want := CompanyKey(g[0])
		for _, name := range g[1:] {
			if got := CompanyKey(name); got != want {
				t.Errorf("CompanyKey(%q) = %q, want %q (as %q)", name, got, want, g[0])
			}
		}
	}
	if CompanyKey("Tesco") != "tesco" || CompanyKey("Inc") != "inc" {
		t.Errorf("suffix stripped inside a word or from a bare suffix: %q %q", CompanyKey("Tesco"), CompanyKey("Inc"))
	}
}

func TestNormalizeDateForms(t *testing.T) {
	for _, raw := range []string{"2026-01-05", "2026/1/5", "2026.01.05", "2026年1月5日", " 2026-1-5 "} {
		if got, err := NormalizeDate(raw); err != nil || got != "2026-01-05" {
			t.Errorf("NormalizeDate(%q) = %q, %v", raw, got, err)
		}
	}
	for _, bad := range []string{"", "2026-02-30", "05/01/2026", "yesterday"} {
		if _, err := NormalizeDate(bad); err == nil {
			t.Errorf("NormalizeDate(%q) accepted", bad)
		}
	}
}

func fieldList(err error) []string { return strings.Split(fieldsOf(err), ",") }

func TestCustomerPrepare(t *testing.T) {
	st := Settings{CustomFields: []CustomFieldDef{
		{Key: "fleet", Label: "Fleet size", Type: FieldNumber},
		{Key: "visit_day", Label: "Visit day", Type: FieldChoice, Options: []string{"mon", "fri"}},
	}}.WithDefaults()
	good := Customer{CustomerFields: CustomerFields{
		Name: "  张三  ", Kind: KindPerson, CompanyName: "Acme Co., Ltd.",
		ContactPoints: ContactPoints{
			Phones: []Phone{{Label: "Mobile", Number: "138 0013 8000"}, {Number: "+8613800138000"}},
			Emails: []Email{{Address: " Ana@Example.COM "}},
		},
		BirthDate: "1990/2/3", Tags: []string{"VIP", "vip", " north "},
		CustomFields: map[string]any{"fleet": 12.0, "visit_day": "fri"},
	}}
	if err := good.Prepare(st); err != nil {
		t.Fatal(err)
	}
	if good.Name != "张三" || len(good.Phones) != 1 || good.Phones[0].Number != "+8613800138000" ||
		good.Emails[0].Address != "ana@example.com" || good.BirthDate != "1990-02-03" ||
		!slices.Equal(good.Tags, []string{"vip", "north"}) || good.Stage != "lead" {
		t.Fatalf("not normalized: %+v", good.CustomerFields)
	}
	wantKeys := []string{"email:ana@example.com", "person:张三@acme", "phone:+8613800138000"}
	if !slices.Equal(good.DedupeKeys, wantKeys) {
		t.Fatalf("dedupe keys %v, want %v", good.DedupeKeys, wantKeys)
	}

	bad := []struct {
		name  string
		edit  func(c *CustomerFields)
		field string
	}{
		{"no name", func(c *CustomerFields) { c.Name = " " }, "name"},
		{"bad kind", func(c *CustomerFields) { c.Kind = "robot" }, "kind"},
		{"bad phone", func(c *CustomerFields) { c.Phones = []Phone{{Number: "12"}} }, "phones[0].number"},
		{"bad email", func(c *CustomerFields) { c.Emails = []Email{{Address: "nope"}} }, "emails[0].address"},
		{"bad stage", func(c *CustomerFields) { c.Stage = "won" }, "stage"},
		{"bad date", func(c *CustomerFields) { c.BirthDate = "1990-13-01" }, "birth_date"},
		{"company with gender", func(c *CustomerFields) { c.Kind = KindCompany; c.Gender = "female" }, "kind"},
		{"unknown custom field", func(c *CustomerFields) { c.CustomFields = map[string]any{"x": "y"} }, "custom_fields.x"},
		{"custom number as text", func(c *CustomerFields) { c.CustomFields = map[string]any{"fleet": "many"} }, "custom_fields.fleet"},
		{"custom choice off list", func(c *CustomerFields) { c.CustomFields = map[string]any{"visit_day": "sun"} }, "custom_fields.visit_day"},
		{"long name", func(c *CustomerFields) { c.Name = strings.Repeat("名", 201) }, "name"},
		{"social without handle", func(c *CustomerFields) { c.Social = []Social{{Network: "wechat"}} }, "social[0].handle"},
		{"negative credit limit", func(c *CustomerFields) { c.CreditLimit = -1 }, "credit_limit"},
	}
	for _, b := range bad {
		c := Customer{CustomerFields: CustomerFields{Name: "Ok", Kind: KindPerson}}
		b.edit(&c.CustomerFields)
		if got := fieldList(c.Prepare(st)); !slices.Contains(got, b.field) {
			t.Errorf("%s: field errors %v, want %s", b.name, got, b.field)
		}
	}
}

// TestCustomerWithoutKindIsAPersonWhenItNamesAnotherCompany: the kind a
// customer gets when none is written, and the duplicate keys it then has:
// people at one company share no key, a company's rows share its company key.
func TestCustomerWithoutKindIsAPersonWhenItNamesAnotherCompany(t *testing.T) {
	cases := []struct {
		name, kind, company string
		wantKind            string
		wantKeys            []string
	}{
		{"王伟", "", "远景贸易有限公司", KindPerson, []string{"person:王伟@远景贸易"}},
		{"李娜", "", "远景贸易", KindPerson, []string{"person:李娜@远景贸易"}},
		{"Wang Wei", "", "North Pumps Ltd", KindPerson, []string{"person:wangwei@northpumps"}},
		{"远景贸易有限公司", "", "", KindCompany, []string{"company:远景贸易"}},
		{"远景贸易", "", "远景贸易有限公司", KindCompany, []string{"company:远景贸易"}},
		{"North Pumps", "", "North Pumps Ltd.", KindCompany, []string{"company:northpumps"}},
		// A kind written wins.
		{"王伟", KindCompany, "远景贸易有限公司", KindCompany, []string{"company:远景贸易"}},
		{"远景贸易", KindPerson, "", KindPerson, nil},
	}
	for _, c := range cases {
		cu := Customer{CustomerFields: CustomerFields{Name: c.name, Kind: c.kind, CompanyName: c.company}}
		if err := cu.Prepare(Settings{}.WithDefaults()); err != nil {
			t.Fatalf("%s of %s: %v", c.name, c.company, err)
		}
		if cu.Kind != c.wantKind || !slices.Equal(cu.DedupeKeys, c.wantKeys) {
			t.Errorf("%s (%q) of %q: kind %s keys %v, want %s %v", c.name, c.kind, c.company, cu.Kind, cu.DedupeKeys, c.wantKind, c.wantKeys)
		}
	}
}

func TestCreditRatingFromPaymentHistories(t *testing.T) {
	now := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	order := func(id, due string, amount int64) Order {
		return Order{Meta: Meta{ID: id}, DueOn: due, Amount: amount, Currency: "CNY", Status: "confirmed"}
	}
	pay := func(orderID, at string, amount int64) Payment {
		t, _ := time.Parse(time.DateOnly, at)
		return Payment{OrderID: orderID, PaidAt: t, Amount: amount}
	}
	cases := []struct {
		name     string
		orders   []Order
		payments []Payment
		limit    int64
		want     string
	}{
		{"no orders", nil, nil, 0, "unrated"},
		{"not yet due", []Order{order("o1", "2026-07-30", 100)}, nil, 0, "unrated"},
		{"paid on time", []Order{order("o1", "2026-05-01", 100), order("o2", "2026-06-01", 100)},
			[]Payment{pay("o1", "2026-04-30", 100), pay("o2", "2026-06-01", 100)}, 0, "A"},
		{"a few days overdue", []Order{order("o1", "2026-06-25", 100)}, nil, 0, "B"},
		{"near the limit", []Order{order("o1", "2026-07-30", 900)}, nil, 1000, "B"},
		{"over the limit", []Order{order("o1", "2026-07-30", 1200)}, nil, 1000, "C"},
		{"45 days overdue", []Order{order("o1", "2026-05-16", 100)}, []Payment{pay("o1", "2026-05-20", 50)}, 0, "C"},
		{"120 days overdue", []Order{order("o1", "2026-03-02", 100)}, nil, 0, "D"},
		{"mostly late", []Order{order("o1", "2026-03-01", 100), order("o2", "2026-04-01", 100), order("o3", "2026-05-01", 100)},
			[]Payment{pay("o1", "2026-03-10", 100), pay("o2", "2026-04-20", 100), pay("o3", "2026-05-01", 100)}, 0, "D"},
	}
	for _, c := range cases {
		credit, balance := RateCredit(c.orders, c.payments, c.limit, "CNY", now)
		if credit.Rating != c.want {
			t.Errorf("%s: rating %s (%v), want %s", c.name, credit.Rating, credit.Reasons, c.want)
		}
		if len(credit.Reasons) == 0 || balance == nil {
			t.Errorf("%s: no reasons or nil balance", c.name)
		}
	}
	credit, balance := RateCredit([]Order{order("o1", "2026-05-16", 100)}, []Payment{pay("o1", "2026-05-20", 30)}, 0, "CNY", now)
	if credit.Outstanding != 70 || credit.MaxDaysOverdue != 45 || len(balance) != 1 || balance[0].Amount != 70 {
		t.Errorf("inputs wrong: %+v %v", credit, balance)
	}
}

func TestTicketWorkflow(t *testing.T) {
	ok := [][2]string{{"new", "assigned"}, {"assigned", "in_progress"}, {"in_progress", "resolved"},
		{"resolved", "closed"}, {"resolved", "in_progress"}, {"closed", "in_progress"}}
	for _, m := range ok {
		if err := CheckTicketMove(m[0], m[1]); err != nil {
			t.Errorf("%s → %s refused: %v", m[0], m[1], err)
		}
	}
	for _, m := range [][2]string{{"closed", "resolved"}, {"resolved", "new"}, {"closed", "new"},
		{"new", "closed"}, {"new", "resolved"}, {"new", "in_progress"}, {"assigned", "closed"}, {"assigned", "resolved"},
		{"in_progress", "closed"}, {"in_progress", "assigned"}} {
		if err := CheckTicketMove(m[0], m[1]); err == nil {
			t.Errorf("%s → %s allowed", m[0], m[1])
		}
	}
	st := Settings{}.WithDefaults()
	opened := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	if got := st.SLADue(PriorityUrgent, opened); !got.Equal(opened.Add(4 * time.Hour)) {
		t.Errorf("urgent SLA due %v", got)
	}
}

func TestSettingsValidate(t *testing.T) {
	if err := (Settings{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Settings{
		CustomerNumber: NumberPattern{Prefix: "c1", Digits: 2}, PhoneRegion: "XX", Currency: "yuan",
		LoyaltyTiers:   []LoyaltyTier{{"a", 5}, {"b", 5}},
		TicketSLAHours: map[string]int{"soon": 1},
		CustomFields:   []CustomFieldDef{{Key: "Bad Key", Label: "x", Type: "blob"}, {Key: "c", Label: "c", Type: FieldChoice}},
	}.WithDefaults()
	got := fieldList(bad.Validate())
	for _, want := range []string{"customer_number.prefix", "customer_number.digits", "phone_region", "currency",
		"loyalty_tiers[0].min_points", "loyalty_tiers[1].min_points", "ticket_sla_hours.soon",
		"custom_fields[0].key", "custom_fields[0].type", "custom_fields[1].options"} {
		if !slices.Contains(got, want) {
			t.Errorf("missing field error %s in %v", want, got)
		}
	}
	if tier := (Settings{}).WithDefaults().TierFor(1500); tier != "silver" {
		t.Errorf("tier for 1500 = %s", tier)
	}
}

func TestNormalizeDateTime(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]string{
		"2026-03-05 14:30":          "2026-03-05T06:30:00Z",
		"2026/3/5 9:05:07":          "2026-03-05T01:05:07Z",
		"2026年3月5日 14时30分":          "2026-03-05T06:30:00Z",
		"2026.3.5":                  "2026-03-04T16:00:00Z",
		"２０２６-０３-０５ １４:３０":          "2026-03-05T06:30:00Z",
		"2026-03-05T14:30:00+01:00": "2026-03-05T13:30:00Z",
		"2026-03-05T14:30:00Z":      "2026-03-05T14:30:00Z",
		"2026年3月5日 14时30分05秒":       "2026-03-05T06:30:05Z",
	} {
		got, err := NormalizeDateTime(raw, shanghai)
		if err != nil || got.Format(time.RFC3339) != want {
			t.Errorf("NormalizeDateTime(%q) = %v, %v; want %s", raw, got, err, want)
		}
	}
	for _, raw := range []string{"", "昨天", "2026-02-30 10:00", "2026-03-05 24:00", "2026-03-05 10:60", "14:30", "2026-03-05 14", "2026-03-05 14:3005"} {
		if got, err := NormalizeDateTime(raw, shanghai); err == nil {
			t.Errorf("NormalizeDateTime(%q) = %v, want an error", raw, got)
		}
	}
}

func TestLoyaltySettledSumsTheLedgerAndDropsHoldsThatAreOver(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	expired := now.Add(-10 * time.Minute)
	st := Settings{}.WithDefaults()
	entry := func(id, kind string, points int64) LoyaltyEntry {
		return LoyaltyEntry{Meta: Meta{ID: id}, Kind: kind, Points: points}
	}
	hold := func(id string, points int64, age time.Duration) PointsHold {
		return PointsHold{EntryID: id, Points: points, At: now.Add(-age)}
	}
	cases := []struct {
		name          string
		held          []PointsHold
		ledger        []LoyaltyEntry
		release       string
		wantBalance   int64
		wantHeld      []string
		wantAvailable int64
	}{
		{"empty", nil, nil, "", 0, nil, 0},
		{"the sum of the entries, whatever was there",
			nil, []LoyaltyEntry{entry("a", PointsEarn, 1500), entry("b", PointsRedeem, 200), entry("c", PointsAdjust, -50), entry("d", PointsExpire, 50)}, "",
			1200, nil, 1200},
		{"a hold of a stored entry is counted, so it goes",
			[]PointsHold{hold("b", 200, time.Second)}, []LoyaltyEntry{entry("a", PointsEarn, 500), entry("b", PointsRedeem, 200)}, "",
			300, nil, 300},
		{"a hold of an entry not stored yet stays",
			[]PointsHold{hold("x", 200, time.Minute)}, []LoyaltyEntry{entry("a", PointsEarn, 500)}, "",
			500, []string{"x"}, 300},
		{"an expired hold goes",
			[]PointsHold{hold("x", 200, time.Hour), hold("y", 100, time.Minute)}, []LoyaltyEntry{entry("a", PointsEarn, 500)}, "",
			500, []string{"y"}, 400},
		{"the released hold goes",
			[]PointsHold{hold("x", 200, time.Second), hold("y", 100, time.Second)}, []LoyaltyEntry{entry("a", PointsEarn, 500)}, "x",
			500, []string{"y"}, 400},
	}
	for _, c := range cases {
		got := Loyalty{Balance: 99999, Held: c.held}.Settled(c.ledger, c.release, expired, st)
		var held []string
		for _, h := range got.Held {
			held = append(held, h.EntryID)
		}
		if got.Balance != c.wantBalance || !slices.Equal(held, c.wantHeld) || got.Available() != c.wantAvailable || got.Tier != st.TierFor(c.wantBalance) {
			t.Errorf("%s: got %+v (available %d), want balance %d, held %v, available %d", c.name, got, got.Available(), c.wantBalance, c.wantHeld, c.wantAvailable)
		}
	}
}
