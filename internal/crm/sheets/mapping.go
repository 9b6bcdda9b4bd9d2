package sheets

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fieldcrm/fieldcrm/models"
)

// Targets of a column besides the customer fields below.
const (
	Ignore       = "ignore"  // a column left out on purpose
	customPrefix = "custom:" // custom:<key>, a custom field of the tenant
)

// customerHeaders are the headers, in Chinese and English, that the import
// maps to each customer field without being told; the export's headers are
// among them, so an export imports back. Headers are compared normalized (see
// normalizeHeader).
var customerHeaders = map[string][]string{
	"external_ref":  {"客户编号", "编号", "客户代码", "原系统编号", "旧编号", "customerno", "customernumber", "customercode", "customerid", "externalref", "externalid", "number", "no"},
	"name":          {"客户名称", "客户名", "客户", "名称", "姓名", "name", "customername", "customer", "fullname"},
	"kind":          {"类型", "客户性质", "kind"},
	"company_name":  {"公司", "公司名称", "单位", "单位名称", "企业名称", "company", "companyname", "organization", "organisation"},
	"title":         {"职位", "职务", "title", "jobtitle", "position"},
	"phones":        {"手机", "手机号", "手机号码", "电话", "联系电话", "电话号码", "座机", "mobile", "phone", "phones", "tel", "telephone", "cell", "mobilephone", "phonenumber"},
	"emails":        {"邮箱", "电子邮件", "电子邮箱", "邮件", "email", "emails", "mail", "emailaddress"},
	"industry":      {"行业", "所属行业", "industry"},
	"company_size":  {"公司规模", "规模", "companysize", "size"},
	"region":        {"区域", "地区", "片区", "region", "area", "territory"},
	"province":      {"省", "省份", "province", "state"},
	"city":          {"市", "城市", "city"},
	"district":      {"区", "区县", "县区", "district", "county"},
	"street":        {"地址", "详细地址", "街道", "街道地址", "address", "street", "streetaddress"},
	"postal_code":   {"邮编", "邮政编码", "postalcode", "zip", "zipcode", "postcode"},
	"gender":        {"性别", "gender", "sex"},
	"birth_date":    {"生日", "出生日期", "birthday", "birthdate", "dateofbirth", "dob"},
	"national_id":   {"身份证", "身份证号", "身份证号码", "证件号码", "idnumber", "nationalid", "idcard"},
	"customer_type": {"客户类型", "customertype"},
	"source":        {"来源", "客户来源", "渠道", "source", "leadsource"},
	"stage":         {"阶段", "客户阶段", "stage", "lifecyclestage"},
	"value_tier":    {"价值等级", "客户价值", "valuetier", "tier"},
	"need_type":     {"需求类型", "needtype"},
	"tags":          {"标签", "tags", "tag", "labels"},
	"product_needs": {"产品需求", "productneeds"},
	"service_needs": {"服务需求", "serviceneeds"},
	"credit_limit":  {"信用额度", "creditlimit"},
	// Written by the server (an export has them); an import leaves them.
	Ignore: {"信用等级", "creditrating", "积分", "points", "负责人", "owner", "创建时间", "created", "更新时间", "updated", "系统id", "fieldcrmid"},
}

// headerNoise is what normalizeHeader drops: spaces, punctuation and the
// asterisk that marks required columns in many templates.
var headerNoise = regexp.MustCompile(`[\s_\-.:：*（）()/\\#]+`)

// normalizeHeader folds a header for comparison: full-width to half-width,
// lower case, no spaces or punctuation ("E-mail *" → "email").
func normalizeHeader(h string) string {
	return headerNoise.ReplaceAllString(strings.ToLower(models.NormalizeText(strings.TrimPrefix(h, "\uFEFF"))), "")
}

// Mapping is an import's column mapping: the target of each header (a
// customer field, custom:<key> or ignore). Headers it does not name are
// mapped automatically.
type Mapping struct {
	Columns map[string]string `json:"columns"`
}

// columnPlan is the resolved target of each column of the file.
type columnPlan struct {
	headers []string
	targets []string // "" for a column nobody claimed, Ignore for one left out
}

// plan resolves the file's headers against the mapping, the automatic
// headers of the kind and (for customers) the tenant's custom fields (by key
// or label).
func plan(k kind, headers []string, m Mapping, custom []models.CustomFieldDef) (columnPlan, error) {
	auto := map[string]string{}
	for field, names := range k.headers {
		for _, n := range names {
			auto[normalizeHeader(n)] = field
		}
	}
	if !k.customFields {
		custom = nil
	}
	for _, d := range custom {
		auto[normalizeHeader(d.Key)] = customPrefix + d.Key
		auto[normalizeHeader(d.Label)] = customPrefix + d.Key
	}
	given := map[string]string{}
	for h, target := range m.Columns {
		given[normalizeHeader(h)] = target
	}
	p := columnPlan{headers: headers, targets: make([]string, len(headers))}
	v := &models.ValidationError{}
	taken := map[string]string{}
	for i, h := range headers {
		key := normalizeHeader(h)
		target, ok := given[key]
		if ok {
			if err := k.checkTarget(target, custom); err != nil {
				v.Add("mapping.columns."+h, "%s", err.Error())
				continue
			}
		} else {
			target = auto[key]
		}
		if target == Ignore {
			p.targets[i] = Ignore // left out on purpose: not "unmapped"
			continue
		}
		if prev, dup := taken[target]; dup && target != "" && !slices.Contains(k.repeatable, target) {
			v.Add("mapping.columns."+h, "maps to %s, as column %q does; map one of them to ignore", target, prev)
			continue
		}
		if target != "" {
			taken[target] = h
		}
		p.targets[i] = target
	}
	for h := range m.Columns {
		if !slices.ContainsFunc(headers, func(x string) bool { return normalizeHeader(x) == normalizeHeader(h) }) {
			v.Add("mapping.columns."+h, "is not a column of the file")
		}
	}
	for _, need := range k.required {
		if _, ok := taken[need]; !ok && len(v.Fields) == 0 {
			names := k.headers[need]
			english := names[slices.IndexFunc(names, isASCII)]
			v.Add("mapping", "no column holds %s (%s / %s); map one with {\"columns\": {\"<header>\": \"%s\"}}",
				need, names[0], english, need)
		}
	}
	return p, v.Err()
}

func isASCII(s string) bool { return strings.IndexFunc(s, func(r rune) bool { return r >= 0x80 }) < 0 }

func (k kind) checkTarget(target string, custom []models.CustomFieldDef) error {
	if target == Ignore {
		return nil
	}
	if key, ok := strings.CutPrefix(target, customPrefix); ok && k.customFields {
		if !slices.ContainsFunc(custom, func(d models.CustomFieldDef) bool { return d.Key == key }) {
			return fmt.Errorf("%s is not a custom field of this tenant (define it in the settings first)", key)
		}
		return nil
	}
	if _, ok := k.headers[target]; !ok {
		if k.customFields {
			return fmt.Errorf("%q is not a field of %s, custom:<key> or ignore", target, k.name)
		}
		return fmt.Errorf("%q is not a field of %s, or ignore", target, k.name)
	}
	return nil
}

// unmapped lists the headers no field claimed (they are left out).
func (p columnPlan) unmapped() []string {
	var out []string
	for i, t := range p.targets {
		if t == "" && strings.TrimSpace(p.headers[i]) != "" {
			out = append(out, p.headers[i])
		}
	}
	return out
}

// columnOf names the column a validation error's field came from; aliases
// are the kind's fieldColumns (the CRM's "customer_id" is the file's
// customer column).
func (p columnPlan) columnOf(field string, aliases map[string][]string) string {
	root, sub, _ := strings.Cut(field, ".")
	root, _, _ = strings.Cut(root, "[")
	switch root {
	case "address":
		root = sub
	case "custom_fields":
		root = customPrefix + sub
	case "items":
		if sub != "" {
			root = sub // an order's one line: items[0].unit_price is the unit price column
		}
	}
	for _, want := range append([]string{root}, aliases[root]...) {
		for i, t := range p.targets {
			if t == want {
				return p.headers[i]
			}
		}
	}
	return ""
}

func (p columnPlan) cells(raw []string, xlsx bool) cells {
	return cells{p: p, raw: raw, xlsx: xlsx, v: &models.ValidationError{}}
}

// listSplit separates several values in one cell: phones, e-mails, tags.
var listSplit = regexp.MustCompile(`[;,，；、|/\n]+`)

func splitList(s string) []string {
	var out []string
	for _, part := range listSplit.Split(s, -1) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// enumWords maps the Chinese (and other common) words for enum values.
var enumWords = map[string]map[string]string{
	"kind":   {"个人": models.KindPerson, "个体": models.KindPerson, "person": models.KindPerson, "公司": models.KindCompany, "企业": models.KindCompany, "单位": models.KindCompany, "company": models.KindCompany, "organization": models.KindCompany},
	"gender": {"男": "male", "女": "female", "m": "male", "f": "female", "男性": "male", "女性": "female"},
	"stage": {"线索": "lead", "潜在客户": "prospect", "意向客户": "prospect", "商机": "opportunity", "成交客户": "customer", "客户": "customer",
		"忠诚客户": "loyal", "流失风险": "at_risk", "已流失": "churned", "流失": "churned"},
	"source":        {"线上": "online", "线下": "offline", "转介绍": "referral", "介绍": "referral", "活动": "event", "广告": "advertising", "陌拜": "cold_call", "电话营销": "cold_call", "导入": "import", "其他": "other"},
	"customer_type": {"普通": "normal", "普通客户": "normal", "vip": "vip", "重点客户": "key_account", "大客户": "key_account", "合作伙伴": "partner"},
}

func enumValue(field, raw string) string {
	if words, ok := enumWords[field]; ok {
		if v, ok := words[strings.ToLower(raw)]; ok {
			return v
		}
	}
	return strings.ToLower(raw)
}

// customer builds a customer from one row. Values are only placed here; the
// CRM normalizes and validates them as for any create (phones to E.164, dates
// to ISO 8601, enums, custom field types). A cell the row cannot even hold
// (a credit limit that is no number) is a field error here.
//
// A row without a kind (no kind column, or an empty cell) is left without
// one: the CRM gives it models.DefaultKind, so a row whose company column
// names a company other than the row's name is a person who works there,
// and people who share a company are not taken for duplicates of it.
func (p columnPlan) customer(cells []string, xlsx bool, custom []models.CustomFieldDef) (models.Customer, error) {
	var c models.Customer
	f := &c.CustomerFields
	v := &models.ValidationError{}
	for i, target := range p.targets {
		if target == "" || target == Ignore || i >= len(cells) {
			continue
		}
		raw := strings.TrimSpace(cells[i])
		if raw == "" {
			continue
		}
		switch target {
		case "external_ref":
			c.ExternalRef = raw
		case "name":
			f.Name = raw
		case "kind", "gender", "stage", "source", "customer_type", "need_type", "value_tier":
			set := map[string]*string{"kind": &f.Kind, "gender": &f.Gender, "stage": &f.Stage, "source": &f.Source,
				"customer_type": &f.CustomerType, "need_type": &f.NeedType, "value_tier": &f.ValueTier}[target]
			*set = enumValue(target, raw)
		case "company_name":
			f.CompanyName = raw
		case "title":
			f.Title = raw
		case "phones":
			for _, n := range splitList(raw) {
				f.Phones = append(f.Phones, models.Phone{Label: "mobile", Number: n})
			}
		case "emails":
			for _, e := range splitList(raw) {
				f.Emails = append(f.Emails, models.Email{Label: "work", Address: e})
			}
		case "industry":
			f.Industry = raw
		case "company_size":
			f.CompanySize = raw
		case "region":
			f.Region = raw
		case "province":
			f.Address.Province = raw
		case "city":
			f.Address.City = raw
		case "district":
			f.Address.District = raw
		case "street":
			f.Address.Street = raw
		case "postal_code":
			f.Address.PostalCode = raw
		case "birth_date":
			f.BirthDate = p.cells(cells, xlsx).date(target)
		case "national_id":
			f.NationalID = raw
		case "tags":
			f.Tags = append(f.Tags, splitList(raw)...)
		case "product_needs":
			f.ProductNeeds = raw
		case "service_needs":
			f.ServiceNeeds = raw
		case "credit_limit":
			n, err := strconv.ParseInt(strings.ReplaceAll(raw, ",", ""), 10, 64)
			if err != nil {
				v.Add("credit_limit", "must be a whole number (minor units), not %q", raw)
				continue
			}
			f.CreditLimit = n
		default:
			key, _ := strings.CutPrefix(target, customPrefix)
			if f.CustomFields == nil {
				f.CustomFields = map[string]any{}
			}
			f.CustomFields[key] = customValue(key, raw, custom)
		}
	}
	return c, v.Err()
}

// customValue turns a cell into what a custom field of its type takes: a
// number field a number (when the cell is one; otherwise the text, which the
// CRM then refuses with the field's rule).
func customValue(key, raw string, defs []models.CustomFieldDef) any {
	for _, d := range defs {
		if d.Key == key && d.Type == models.FieldNumber {
			if n, err := strconv.ParseFloat(strings.ReplaceAll(raw, ",", ""), 64); err == nil {
				return n
			}
		}
	}
	return raw
}
