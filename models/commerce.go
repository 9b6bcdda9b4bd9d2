package models

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Money is an amount in the minor unit of its currency (fen, cents), so sums
// are exact.
type Money struct {
	Currency string `bson:"currency" json:"currency"`
	Amount   int64  `bson:"amount" json:"amount"`
}

// Order statuses. Draft and cancelled orders owe nothing.
var OrderStatuses = []string{"draft", "confirmed", "shipped", "completed", "cancelled"}

// LineItem is one product on an order.
type LineItem struct {
	Product  string  `bson:"product" json:"product"`
	SKU      string  `bson:"sku" json:"sku"`
	Quantity float64 `bson:"quantity" json:"quantity"`
	// UnitPrice is in minor units of the order's currency.
	UnitPrice int64 `bson:"unit_price" json:"unit_price"`
}

// Order is a purchase by a customer.
type Order struct {
	Meta        `bson:",inline"`
	ChildFields `bson:",inline"`
	// OrderedOn and DueOn are calendar dates (YYYY-MM-DD); DueOn is when payment
	// is due and defaults to OrderedOn plus PaymentTermDays.
	OrderedOn       string     `bson:"ordered_on" json:"ordered_on"`
	PaymentTermDays int        `bson:"payment_term_days" json:"payment_term_days"`
	DueOn           string     `bson:"due_on" json:"due_on"`
	Items           []LineItem `bson:"items" json:"items"`
	// Amount is the sum of the line items, computed by the server.
	Amount   int64  `bson:"amount" json:"amount"`
	Currency string `bson:"currency" json:"currency"`
	Status   string `bson:"status" json:"status"`
	Note     string `bson:"note" json:"note"`
}

// MaxAmount bounds money values (10^15 minor units) so that sums never overflow.
const MaxAmount = 1_000_000_000_000_000

// Prepare validates an order and computes its amount and due date.
func (o *Order) Prepare(st Settings, now time.Time) error {
	v := &ValidationError{}
	o.ChildFields.prepare(v)
	if o.OrderedOn == "" {
		o.OrderedOn = now.UTC().Format(time.DateOnly)
	}
	ordered, err := NormalizeDate(o.OrderedOn)
	if err != nil {
		v.Add("ordered_on", "%s", err.Error())
	}
	o.OrderedOn = ordered
	if o.PaymentTermDays < 0 || o.PaymentTermDays > 365 {
		v.Add("payment_term_days", "must be from 0 to 365")
	}
	if o.DueOn == "" && ordered != "" {
		d, _ := time.Parse(time.DateOnly, ordered)
		o.DueOn = d.AddDate(0, 0, o.PaymentTermDays).Format(time.DateOnly)
	} else if o.DueOn != "" {
		due, err := NormalizeDate(o.DueOn)
		if err != nil {
			v.Add("due_on", "%s", err.Error())
		}
		o.DueOn = due
	}
	if o.Currency == "" {
		o.Currency = st.Currency
	}
	if !currencyCode.MatchString(o.Currency) {
		v.Add("currency", "must be an ISO 4217 code such as CNY")
	}
	if o.Status == "" {
		o.Status = "confirmed"
	}
	oneOf(v, "status", o.Status, OrderStatuses)
	o.Note = longText(v, "note", o.Note)
	if len(o.Items) == 0 || len(o.Items) > 500 {
		v.Add("items", "an order has 1 to 500 line items")
	}
	var total float64
	for i, it := range o.Items {
		f := "items[" + strconv.Itoa(i) + "]"
		it.Product = shortText(v, f+".product", it.Product)
		if it.Product == "" {
			v.Add(f+".product", "is required")
		}
		it.SKU = shortText(v, f+".sku", it.SKU)
		if it.Quantity <= 0 || it.Quantity > 1e9 || math.IsNaN(it.Quantity) {
			v.Add(f+".quantity", "must be above 0 and at most 1000000000")
		}
		if it.UnitPrice < 0 || it.UnitPrice > MaxAmount {
			v.Add(f+".unit_price", "must be from 0 to %d minor units", int64(MaxAmount))
		}
		o.Items[i] = it
		total += math.Round(it.Quantity * float64(it.UnitPrice))
	}
	if total > MaxAmount {
		v.Add("items", "the order total exceeds %d minor units", int64(MaxAmount))
	}
	o.Amount = int64(total)
	return v.Err()
}

// Owes reports whether the order creates a debt.
func (o *Order) Owes() bool { return o.Status != "draft" && o.Status != "cancelled" && !o.Deleted() }

// Payment methods.
var PaymentMethods = []string{"cash", "bank_transfer", "card", "wechat_pay", "alipay", "cheque", "other"}

// Payment is money received against an order.
type Payment struct {
	Meta        `bson:",inline"`
	ChildFields `bson:",inline"`
	OrderID     string    `bson:"order_id" json:"order_id"`
	Method      string    `bson:"method" json:"method"`
	PaidAt      time.Time `bson:"paid_at" json:"paid_at"`
	Amount      int64     `bson:"amount" json:"amount"`
	// Currency is the order's; the server copies it.
	Currency  string `bson:"currency" json:"currency"`
	Reference string `bson:"reference" json:"reference"`
}

// Prepare validates a payment. The customer id is taken from the order by the
// service, so only the order is required here.
func (p *Payment) Prepare(now time.Time) error {
	v := &ValidationError{}
	if p.OrderID == "" {
		v.Add("order_id", "is required")
	}
	oneOf(v, "method", p.Method, PaymentMethods)
	if p.PaidAt.IsZero() {
		p.PaidAt = now
	}
	p.PaidAt = p.PaidAt.UTC()
	if p.PaidAt.After(now.Add(24 * time.Hour)) {
		v.Add("paid_at", "must not be in the future")
	}
	if p.Amount <= 0 || p.Amount > MaxAmount {
		v.Add("amount", "must be above 0 and at most %d minor units", int64(MaxAmount))
	}
	p.Reference = shortText(v, "reference", p.Reference)
	return v.Err()
}

// Credit is a customer's credit rating with the inputs it was computed from,
// so a manager can see why.
type Credit struct {
	// Rating is A (pays on time) to D (seriously overdue), or "unrated" before
	// any order has fallen due.
	Rating string `bson:"rating" json:"rating"`
	// Outstanding is what is still owed, in the tenant currency.
	Outstanding int64 `bson:"outstanding" json:"outstanding"`
	// MaxDaysOverdue is the age of the oldest unpaid debt past its due date.
	MaxDaysOverdue int `bson:"max_days_overdue" json:"max_days_overdue"`
	// OrdersDue counts orders whose due date has passed or that are paid;
	// OrdersLate those of them paid after the due date or still unpaid past it.
	OrdersDue  int     `bson:"orders_due" json:"orders_due"`
	OrdersLate int     `bson:"orders_late" json:"orders_late"`
	LateShare  float64 `bson:"late_share" json:"late_share"`
	// CreditLimit is the customer's limit (0: none), for the utilization rule.
	CreditLimit int64     `bson:"credit_limit" json:"credit_limit"`
	Reasons     []string  `bson:"reasons" json:"reasons"`
	ComputedAt  time.Time `bson:"computed_at" json:"computed_at"`
}

// RateCredit computes a customer's credit rating and balance per currency from
// its orders and payments at now. The thresholds, documented in docs/api.md:
//
//	D: more than 90 days overdue, or more than half of due orders paid late
//	C: more than 30 days overdue, more than a quarter late, or over the credit limit
//	   (the "late share" rules of C and D need at least 2 due orders: one late
//	   order is not yet a pattern, and its days overdue already count)
//	B: anything overdue, more than a tenth late, or above 80 % of the credit limit
//	A: otherwise
func RateCredit(orders []Order, payments []Payment, creditLimit int64, currency string, now time.Time) (Credit, []Money) {
	today := now.UTC().Format(time.DateOnly)
	paid := map[string]int64{}
	paidOff := map[string]time.Time{} // when each order's payments reached its amount
	sorted := slices.Clone(payments)
	slices.SortFunc(sorted, func(a, b Payment) int { return a.PaidAt.Compare(b.PaidAt) })
	amounts := map[string]int64{}
	for _, o := range orders {
		amounts[o.ID] = o.Amount
	}
	for _, p := range sorted {
		if p.Deleted() {
			continue
		}
		paid[p.OrderID] += p.Amount
		if _, done := paidOff[p.OrderID]; !done && paid[p.OrderID] >= amounts[p.OrderID] {
			paidOff[p.OrderID] = p.PaidAt
		}
	}
	c := Credit{CreditLimit: creditLimit, ComputedAt: now.UTC()}
	balance := map[string]int64{}
	for _, o := range orders {
		if !o.Owes() {
			continue
		}
		owed := max(o.Amount-paid[o.ID], 0)
		balance[o.Currency] += owed
		due, _ := time.Parse(time.DateOnly, o.DueOn)
		paidAt, isPaid := paidOff[o.ID]
		switch {
		case isPaid:
			c.OrdersDue++
			if paidAt.UTC().Format(time.DateOnly) > o.DueOn {
				c.OrdersLate++
			}
		case o.DueOn < today:
			c.OrdersDue++
			c.OrdersLate++
			days := int(now.Sub(due).Hours() / 24)
			c.MaxDaysOverdue = max(c.MaxDaysOverdue, days)
		}
	}
	c.Outstanding = balance[currency]
	if c.OrdersDue > 0 {
		c.LateShare = math.Round(float64(c.OrdersLate)/float64(c.OrdersDue)*100) / 100
	}
	c.Rating, c.Reasons = c.rate()
	var out []Money
	for cur, amt := range balance {
		if amt > 0 {
			out = append(out, Money{Currency: cur, Amount: amt})
		}
	}
	slices.SortFunc(out, func(a, b Money) int {
		if a.Currency < b.Currency {
			return -1
		}
		return 1
	})
	if out == nil {
		out = []Money{}
	}
	return c, out
}

func (c Credit) rate() (string, []string) {
	var reasons []string
	over := func(limitShare float64) bool {
		return c.CreditLimit > 0 && float64(c.Outstanding) > limitShare*float64(c.CreditLimit)
	}
	if c.OrdersDue == 0 && !over(0.8) {
		return "unrated", []string{"no order has fallen due yet"}
	}
	switch {
	case c.MaxDaysOverdue > 90:
		reasons = append(reasons, fmt.Sprintf("%d days overdue (more than 90)", c.MaxDaysOverdue))
	case c.OrdersDue >= 2 && c.LateShare > 0.5:
		reasons = append(reasons, fmt.Sprintf("%d of %d due orders paid late (more than half)", c.OrdersLate, c.OrdersDue))
	}
	if reasons != nil {
		return "D", reasons
	}
	switch {
	case c.MaxDaysOverdue > 30:
		reasons = append(reasons, fmt.Sprintf("%d days overdue (more than 30)", c.MaxDaysOverdue))
	case c.OrdersDue >= 2 && c.LateShare > 0.25:
		reasons = append(reasons, fmt.Sprintf("%d of %d due orders paid late (more than a quarter)", c.OrdersLate, c.OrdersDue))
	case over(1):
		reasons = append(reasons, fmt.Sprintf("outstanding %d is over the credit limit %d", c.Outstanding, c.CreditLimit))
	}
	if reasons != nil {
		return "C", reasons
	}
	switch {
	case c.MaxDaysOverdue > 0:
		reasons = append(reasons, fmt.Sprintf("%d days overdue", c.MaxDaysOverdue))
	case c.LateShare > 0.1:
		reasons = append(reasons, fmt.Sprintf("%d of %d due orders paid late (more than a tenth)", c.OrdersLate, c.OrdersDue))
	case over(0.8):
		reasons = append(reasons, fmt.Sprintf("outstanding %d is above 80%% of the credit limit %d", c.Outstanding, c.CreditLimit))
	}
	if reasons != nil {
		return "B", reasons
	}
	return "A", []string{"pays on time"}
}
