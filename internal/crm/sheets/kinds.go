package sheets

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// kind is what one kind of import reads: the fields its columns map to.
type kind struct {
	name string
	// headers are the header names, Chinese and English, mapped to each
	// field without being told (compared normalized; see normalizeHeader).
	headers map[string][]string
	// required fields must have a column; repeatable ones may have several
	// (their values add up).
	required, repeatable []string
	// refField is the column holding a row's number in the old system, from
	// which the id of its record derives ("" where rows have none: they are
	// known by their content).
	refField string
	// fieldColumns maps the CRM's names of invalid fields to the field of the
	// column they came from, where the two differ.
	fieldColumns map[string][]string
	customFields bool
}

// Header names shared by several kinds.
var (
	phoneHeaders    = []string{"手机", "手机号", "手机号码", "电话", "联系电话", "电话号码", "座机", "mobile", "phone", "phones", "tel", "telephone", "cell", "mobilephone", "phonenumber"}
	emailHeaders    = []string{"邮箱", "电子邮件", "电子邮箱", "邮件", "email", "emails", "mail", "emailaddress"}
	customerRefs    = []string{"客户编号", "客户代码", "客户号", "客户", "客户名称", "所属客户", "公司", "公司名称", "单位名称", "企业名称", "customer", "customerno", "customernumber", "customerid", "customerref", "customercode", "account", "company", "companyname"}
	repHeaders      = []string{"跟进人", "负责人", "销售", "业务员", "销售代表", "录入人", "经办人", "rep", "salesrep", "user", "by", "owner"}
	orderRefHeaders = []string{"订单号", "订单编号", "单号", "合同号", "orderno", "ordernumber", "orderid", "orderref"}
)

var kinds = map[string]kind{
	crm.ImportCustomers: {
		name: "customers", headers: customerHeaders, required: []string{"name"}, repeatable: []string{"phones", "emails", "tags"},
		refField: "external_ref", customFields: true,
	},
	crm.ImportContacts: {
		name: "contacts", required: []string{"customer", "name"}, repeatable: []string{"phones", "emails"},
		headers: map[string][]string{
			"customer":   customerRefs,
			"name":       {"联系人", "联系人姓名", "姓名", "名字", "contact", "contactname", "name", "fullname"},
			"title":      {"职位", "职务", "title", "jobtitle", "position"},
			"phones":     phoneHeaders,
			"emails":     emailHeaders,
			"is_primary": {"主联系人", "是否主联系人", "首要联系人", "primary", "isprimary", "primarycontact"},
		},
		fieldColumns: map[string][]string{"customer_id": {"customer"}},
	},
	crm.ImportInteractions: {
		name: "interactions", required: []string{"customer"},
		headers: map[string][]string{
			"customer":         customerRefs,
			"channel":          {"方式", "跟进方式", "沟通方式", "类型", "跟进类型", "channel", "type", "method"},
			"occurred_at":      {"时间", "跟进时间", "沟通时间", "拜访时间", "日期", "跟进日期", "date", "time", "datetime", "occurredat", "when"},
			"duration_minutes": {"时长", "时长分钟", "通话时长分钟", "duration", "durationminutes", "minutes"},
			"duration_seconds": {"时长秒", "通话时长秒", "通话时长", "durationseconds", "seconds"},
			"content":          {"内容", "跟进内容", "沟通内容", "记录", "跟进记录", "备注", "content", "notes", "note", "summary", "description"},
			"outcome":          {"结果", "跟进结果", "outcome", "result"},
			"rep":              repHeaders,
		},
		fieldColumns: map[string][]string{"customer_id": {"customer"}, "duration_seconds": {"duration_minutes", "duration_seconds"}},
	},
	crm.ImportOrders: {
		name: "orders", required: []string{"customer"}, refField: "order_no",
		headers: map[string][]string{
			"customer":          customerRefs,
			"order_no":          {"订单号", "订单编号", "单号", "合同号", "orderno", "ordernumber", "orderid", "orderref", "number", "no"},
			"ordered_on":        {"下单日期", "订单日期", "日期", "签约日期", "orderdate", "orderedon", "date"},
			"due_on":            {"到期日", "付款到期日", "应付日期", "dueon", "duedate", "paymentdue"},
			"payment_term_days": {"账期", "账期天", "付款期限天", "paymenttermdays", "terms", "paymentterms"},
			"product":           {"产品", "产品名称", "商品", "商品名称", "product", "productname", "item"},
			"sku":               {"产品编码", "商品编码", "货号", "sku", "productcode"},
			"quantity":          {"数量", "quantity", "qty"},
			"unit_price":        {"单价", "unitprice", "price"},
			"amount":            {"金额", "订单金额", "总金额", "合计", "amount", "total", "ordertotal"},
			"currency":          {"币种", "货币", "currency"},
			"status":            {"状态", "订单状态", "status"},
			"note":              {"备注", "说明", "note", "notes", "remark"},
			"rep":               repHeaders,
		},
		fieldColumns: map[string][]string{"customer_id": {"customer"}, "items": {"amount", "product"}},
	},
	crm.ImportPayments: {
		name: "payments", required: []string{"order_no", "amount"}, refField: "reference",
		headers: map[string][]string{
			"order_no":  orderRefHeaders,
			"paid_at":   {"付款日期", "付款时间", "收款日期", "回款日期", "到账日期", "日期", "paidat", "paymentdate", "date"},
			"amount":    {"金额", "付款金额", "收款金额", "回款金额", "amount", "paid"},
			"method":    {"付款方式", "支付方式", "收款方式", "方式", "method", "paymentmethod"},
			"reference": {"流水号", "交易号", "凭证号", "参考号", "reference", "transactionid", "ref"},
			"rep":       repHeaders,
		},
		fieldColumns: map[string][]string{"order_id": {"order_no"}},
	},
}

// recordWords maps the Chinese (and other common) words for the enum values
// of records.
var recordWords = map[string]map[string]string{
	"channel": {"电话": "phone", "通话": "phone", "来电": "phone", "去电": "phone", "拜访": "visit", "上门拜访": "visit", "面访": "visit", "上门": "visit",
		"会议": "meeting", "会面": "meeting", "见面": "meeting", "邮件": "email", "电子邮件": "email", "微信": "wechat", "短信": "sms",
		"社交": "social", "社交媒体": "social", "其他": "other", "其它": "other"},
	"status": {"草稿": "draft", "已确认": "confirmed", "确认": "confirmed", "已发货": "shipped", "发货": "shipped",
		"已完成": "completed", "完成": "completed", "已取消": "cancelled", "取消": "cancelled", "canceled": "cancelled"},
	"method": {"现金": "cash", "银行转账": "bank_transfer", "转账": "bank_transfer", "对公转账": "bank_transfer", "汇款": "bank_transfer",
		"刷卡": "card", "银行卡": "card", "信用卡": "card", "微信": "wechat_pay", "微信支付": "wechat_pay", "支付宝": "alipay",
		"支票": "cheque", "check": "cheque", "其他": "other", "其它": "other", "bank transfer": "bank_transfer", "wechat": "wechat_pay"},
}

func recordWord(field, raw string) string {
	if v, ok := recordWords[field][strings.ToLower(raw)]; ok {
		return v
	}
	return strings.ToLower(raw)
}

// cells reads one row by field.
type cells struct {
	p    columnPlan
	raw  []string
	xlsx bool
	v    *models.ValidationError
}

func (c cells) get(field string) string {
	for i, t := range c.p.targets {
		if t == field && i < len(c.raw) {
			return strings.TrimSpace(c.raw[i])
		}
	}
	return ""
}

// moment reads a date and time; an XLSX date cell arrives as Excel's serial
// day number.
func (c cells) moment(field string, loc *time.Location) time.Time {
	raw := c.get(field)
	if raw == "" {
		return time.Time{}
	}
	if t, ok := c.excelSerial(raw, loc); ok {
		return t.UTC()
	}
	t, err := models.NormalizeDateTime(raw, loc)
	if err != nil {
		c.v.Add(field, "%s", err.Error())
	}
	return t
}

// date reads a calendar date (checked later by the CRM).
func (c cells) date(field string) string {
	raw := c.get(field)
	if t, ok := c.excelSerial(raw, time.UTC); ok {
		return t.Format(time.DateOnly)
	}
	return raw
}

// excelSerial reads Excel's serial date (days since 1899-12-30, the time of
// day as the fraction) from an XLSX cell.
func (c cells) excelSerial(raw string, loc *time.Location) (time.Time, bool) {
	if !c.xlsx {
		return time.Time{}, false
	}
	days, err := strconv.ParseFloat(raw, 64)
	if err != nil || days < 1 || days > 2958465 {
		return time.Time{}, false
	}
	whole := math.Floor(days)
	seconds := math.Round((days - whole) * 86400)
	base := time.Date(1899, 12, 30, 0, 0, 0, 0, loc)
	return base.AddDate(0, 0, int(whole)).Add(time.Duration(seconds) * time.Second), true
}

func (c cells) number(field string) (float64, bool) {
	raw := strings.ReplaceAll(c.get(field), ",", "")
	if raw == "" {
		return 0, false
	}
	n, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		c.v.Add(field, "must be a number, not %q", raw)
		return 0, false
	}
	return n, true
}

var moneyNoise = regexp.MustCompile(`(?i)[\s,¥￥$€£]|元|rmb|cny|usd|eur`)

// zeroDecimalCurrencies have no minor unit.
var zeroDecimalCurrencies = map[string]bool{"JPY": true, "KRW": true, "VND": true, "CLP": true, "ISK": true, "UGX": true, "PYG": true}

// money reads an amount written as people write it in a spreadsheet, in the
// currency's main unit (1,280.50, ¥1280, 1280元), and returns it in minor
// units, as fieldcrm stores money. More decimals than the currency has are
// an error rather than silently rounded.
func (c cells) money(field, currency string) (int64, bool) {
	raw := c.get(field)
	if raw == "" {
		return 0, false
	}
	s := moneyNoise.ReplaceAllString(models.NormalizeText(raw), "")
	decimals := 2
	if zeroDecimalCurrencies[currency] {
		decimals = 0
	}
	whole, frac, _ := strings.Cut(s, ".")
	ok := whole != "" && strings.Trim(whole, "0123456789") == "" && strings.Trim(frac, "0123456789") == "" && len(whole) <= 15
	frac = strings.TrimRight(frac, "0")
	if !ok || len(frac) > decimals {
		c.v.Add(field, "must be an amount such as 1,280.50 (at most %d decimals), not %q", decimals, raw)
		return 0, false
	}
	frac += strings.Repeat("0", decimals-len(frac))
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		c.v.Add(field, "must be an amount such as 1,280.50, not %q", raw)
		return 0, false
	}
	return n, true
}

// yes reads a yes/no cell.
func (c cells) yes(field string) bool {
	switch strings.ToLower(c.get(field)) {
	case "", "否", "不是", "no", "n", "false", "0", "×":
		return false
	case "是", "yes", "y", "true", "1", "√", "✓", "主要":
		return true
	}
	c.v.Add(field, "must be yes or no (是/否)")
	return false
}

// record builds the record of one row of a contacts, interactions, orders or
// payments import. Values are placed here; the CRM normalizes and validates
// them as for any create. settings give the default currency; loc is the
// time zone of times written without one.
func (p columnPlan) record(k kind, raw []string, xlsx bool, st models.Settings, loc *time.Location) (crm.RecordRow, error) {
	c := p.cells(raw, xlsx)
	row := crm.RecordRow{Customer: c.get("customer"), Order: c.get("order_no"), Rep: c.get("rep")}
	switch k.name {
	case crm.ImportContacts:
		ct := &models.Contact{Name: c.get("name"), Title: c.get("title"), IsPrimary: c.yes("is_primary")}
		for _, n := range splitList(c.get("phones")) {
			ct.Phones = append(ct.Phones, models.Phone{Label: "mobile", Number: n})
		}
		for _, e := range splitList(c.get("emails")) {
			ct.Emails = append(ct.Emails, models.Email{Label: "work", Address: e})
		}
		row.Record = ct
	case crm.ImportInteractions:
		in := &models.Interaction{Channel: recordWord("channel", c.get("channel")), OccurredAt: c.moment("occurred_at", loc),
			Content: c.get("content"), Outcome: c.get("outcome")}
		if in.Channel == "" {
			in.Channel = "other"
		}
		if in.OccurredAt.IsZero() && len(c.v.Fields) == 0 {
			c.v.Add("occurred_at", "is required: when the interaction took place")
		}
		if m, ok := c.number("duration_minutes"); ok {
			in.DurationSeconds = int(math.Round(m * 60))
		}
		if s, ok := c.number("duration_seconds"); ok {
			in.DurationSeconds = int(math.Round(s))
		}
		row.Record = in
	case crm.ImportOrders:
		row.Record = c.order(st)
	case crm.ImportPayments:
		pay := &models.Payment{Method: recordWord("method", c.get("method")), PaidAt: c.moment("paid_at", loc), Reference: c.get("reference")}
		if pay.Method == "" {
			pay.Method = "other"
		}
		if pay.PaidAt.IsZero() && len(c.v.Fields) == 0 {
			c.v.Add("paid_at", "is required: when the payment was made")
		}
		// The amount is in the order's currency, which the CRM knows; the
		// tenant's is the one orders take unless they say.
		pay.Amount, _ = c.money("amount", st.Currency)
		row.Record = pay
	}
	return row, c.v.Err()
}

// order builds an order of one line: the product with its quantity and unit
// price, or, when the file has only a total, one line of that amount.
func (c cells) order(st models.Settings) *models.Order {
	o := &models.Order{OrderedOn: c.date("ordered_on"), DueOn: c.date("due_on"), Currency: strings.ToUpper(c.get("currency")),
		Status: recordWord("status", c.get("status")), Note: c.get("note")}
	currency := o.Currency
	if currency == "" {
		currency = st.Currency
	}
	if days, ok := c.number("payment_term_days"); ok {
		o.PaymentTermDays = int(days)
	}
	item := models.LineItem{Product: c.get("product"), SKU: c.get("sku"), Quantity: 1}
	if q, ok := c.number("quantity"); ok {
		item.Quantity = q
	}
	price, hasPrice := c.money("unit_price", currency)
	amount, hasAmount := c.money("amount", currency)
	switch {
	case hasPrice:
		item.UnitPrice = price
		if hasAmount && amount != int64(math.Round(item.Quantity*float64(price))) {
			c.v.Add("amount", "is not the quantity times the unit price")
		}
	case hasAmount:
		item.UnitPrice = int64(math.Round(float64(amount) / item.Quantity))
		if int64(math.Round(item.Quantity*float64(item.UnitPrice))) != amount {
			c.v.Add("amount", "cannot be divided into the quantity at a whole unit price; give the unit price")
		}
	default:
		if len(c.v.Fields) == 0 {
			c.v.Add("amount", "is required (or a unit price)")
		}
	}
	if item.Product == "" {
		item.Product = "order " + c.get("order_no")
		if c.get("order_no") == "" {
			item.Product = "imported order"
		}
	}
	o.Items = []models.LineItem{item}
	return o
}
