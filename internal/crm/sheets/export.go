// Package sheets moves CRM records between fieldcrm and spreadsheets: CSV
// and Excel exports of customers, streamed page by page under the caller's
// visibility and masking rules.
package sheets

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// Export formats.
const (
	CSV  = "csv"
	XLSX = "xlsx"
)

// ContentType is the media type of a format.
func ContentType(format string) string {
	if format == XLSX {
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "text/csv; charset=utf-8"
}

// column is one exported column: its headers and how a customer fills it.
type column struct {
	key, en, zh string
	value       func(c *models.Customer, mask bool) string
}

// joined lists values with "; ", each masked when mask is set.
func joined[T any](items []T, value func(T) string, mask bool, masker func(string) string) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = value(it)
		if mask {
			out[i] = masker(out[i])
		}
	}
	return strings.Join(out, "; ")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// customerColumns are the columns of a customer export, in order. The
// headers are the ones the import recognizes, so an export imports back.
var customerColumns = []column{
	{"number", "Customer No.", "客户编号", func(c *models.Customer, _ bool) string { return c.Number }},
	{"name", "Name", "客户名称", func(c *models.Customer, _ bool) string { return c.Name }},
	{"kind", "Kind", "类型", func(c *models.Customer, _ bool) string { return c.Kind }},
	{"company_name", "Company", "公司", func(c *models.Customer, _ bool) string { return c.CompanyName }},
	{"title", "Job Title", "职位", func(c *models.Customer, _ bool) string { return c.Title }},
	{"phones", "Mobile", "手机", func(c *models.Customer, mask bool) string {
		return joined(c.Phones, func(p models.Phone) string { return p.Number }, mask, models.MaskPhone)
	}},
	{"emails", "Email", "邮箱", func(c *models.Customer, mask bool) string {
		return joined(c.Emails, func(e models.Email) string { return e.Address }, mask, models.MaskEmail)
	}},
	{"industry", "Industry", "行业", func(c *models.Customer, _ bool) string { return c.Industry }},
	{"company_size", "Company Size", "公司规模", func(c *models.Customer, _ bool) string { return c.CompanySize }},
	{"region", "Region", "区域", func(c *models.Customer, _ bool) string { return c.Region }},
	{"province", "Province", "省份", func(c *models.Customer, _ bool) string { return c.Address.Province }},
	{"city", "City", "城市", func(c *models.Customer, _ bool) string { return c.Address.City }},
	{"district", "District", "区县", func(c *models.Customer, _ bool) string { return c.Address.District }},
	{"street", "Street", "地址", func(c *models.Customer, mask bool) string {
		if mask && c.Kind == models.KindPerson {
			return maskedText(c.Address.Street)
		}
		return c.Address.Street
	}},
	{"postal_code", "Postal Code", "邮编", func(c *models.Customer, _ bool) string { return c.Address.PostalCode }},
	{"gender", "Gender", "性别", func(c *models.Customer, _ bool) string { return c.Gender }},
	{"birth_date", "Birth Date", "出生日期", func(c *models.Customer, mask bool) string {
		if mask && len(c.BirthDate) >= 4 {
			return c.BirthDate[:4] + "-**-**"
		}
		return c.BirthDate
	}},
	// The national ID is masked already for everyone but admins (crm's view).
	{"national_id", "ID Number", "身份证号", func(c *models.Customer, _ bool) string { return c.NationalID }},
	{"customer_type", "Customer Type", "客户类型", func(c *models.Customer, _ bool) string { return c.CustomerType }},
	{"source", "Source", "来源", func(c *models.Customer, _ bool) string { return c.Source }},
	{"stage", "Stage", "阶段", func(c *models.Customer, _ bool) string { return c.Stage }},
	{"value_tier", "Value Tier", "价值等级", func(c *models.Customer, _ bool) string { return c.ValueTier }},
	{"tags", "Tags", "标签", func(c *models.Customer, _ bool) string { return strings.Join(c.Tags, "; ") }},
	{"product_needs", "Product Needs", "产品需求", func(c *models.Customer, _ bool) string { return c.ProductNeeds }},
	{"service_needs", "Service Needs", "服务需求", func(c *models.Customer, _ bool) string { return c.ServiceNeeds }},
	{"credit_limit", "Credit Limit", "信用额度", func(c *models.Customer, _ bool) string { return strconv.FormatInt(c.CreditLimit, 10) }},
	{"credit_rating", "Credit Rating", "信用等级", func(c *models.Customer, _ bool) string {
		if c.Credit == nil {
			return ""
		}
		return c.Credit.Rating
	}},
	{"loyalty_points", "Points", "积分", func(c *models.Customer, _ bool) string { return strconv.FormatInt(c.Loyalty.Balance, 10) }},
	{"owner_id", "Owner", "负责人", func(c *models.Customer, _ bool) string { return c.OwnerID }},
	{"created_at", "Created", "创建时间", func(c *models.Customer, _ bool) string { return stamp(c.CreatedAt) }},
	{"updated_at", "Updated", "更新时间", func(c *models.Customer, _ bool) string { return stamp(c.UpdatedAt) }},
	{"id", "fieldcrm ID", "系统ID", func(c *models.Customer, _ bool) string { return c.ID }},
}

// maskedText keeps the first two characters of a free-text value.
func maskedText(s string) string {
	r := []rune(s)
	if len(r) <= 2 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:2]) + strings.Repeat("*", len(r)-2)
}

// Lister reads the customers an actor may see (crm's Customers).
type Lister interface {
	CheckList(ctx context.Context, a models.Actor, o crm.ListOptions) error
	Each(ctx context.Context, a models.Actor, o crm.ListOptions, fn func(models.Customer) error) error
}

// Request is one export: who asks, which customers (the list API's
// filters and sort), in which format and header language.
type Request struct {
	Actor   models.Actor
	Filters map[string]string
	Sort    string
	Format  string
	// Lang is "en" or "zh" (headers); custom fields use their labels.
	Lang string
	// CustomFields are the tenant's, exported as one column each.
	CustomFields []models.CustomFieldDef
}

// Check validates the request's own settings (filters are checked by the
// first page).
func (r Request) Check() error {
	v := &models.ValidationError{}
	if r.Format != CSV && r.Format != XLSX {
		v.Add("format", "must be csv or xlsx")
	}
	if r.Lang != "en" && r.Lang != "zh" {
		v.Add("lang", "must be en or zh")
	}
	return v.Err()
}

// Export is a customer export under way: Start checks the request, so a bad
// one fails before any byte is sent; Write then streams every customer.
type Export struct {
	src Lister
	req Request
}

// Start checks the request's format, language, filters and sort.
func Start(ctx context.Context, src Lister, req Request) (*Export, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	if err := src.CheckList(ctx, req.Actor, req.options()); err != nil {
		return nil, err
	}
	return &Export{src: src, req: req}, nil
}

func (r Request) options() crm.ListOptions {
	return crm.ListOptions{Filters: r.Filters, Sort: r.Sort}
}

// rowWriter is a spreadsheet being written row by row.
type rowWriter interface {
	row(cells []string) error
	close() error
}

// Write streams the export to w and returns the number of customers written.
// Contact details are masked unless the actor is an admin.
func (e *Export) Write(ctx context.Context, w io.Writer) (int, error) {
	out, err := newRowWriter(e.req.Format, w)
	if err != nil {
		return 0, err
	}
	header := make([]string, 0, len(customerColumns)+len(e.req.CustomFields))
	for _, c := range customerColumns {
		header = append(header, map[bool]string{true: c.zh, false: c.en}[e.req.Lang == "zh"])
	}
	for _, d := range e.req.CustomFields {
		header = append(header, d.Label)
	}
	if err := out.row(header); err != nil {
		return 0, err
	}
	mask := e.req.Actor.Role != models.RoleAdmin
	n := 0
	err = e.src.Each(ctx, e.req.Actor, e.req.options(), func(c models.Customer) error {
		n++
		return out.row(e.cells(&c, mask))
	})
	if err != nil {
		return n, fmt.Errorf("export customers after %d rows: %w", n, err)
	}
	return n, out.close()
}

func (e *Export) cells(c *models.Customer, mask bool) []string {
	cells := make([]string, 0, len(customerColumns)+len(e.req.CustomFields))
	for _, col := range customerColumns {
		cells = append(cells, col.value(c, mask))
	}
	for _, d := range e.req.CustomFields {
		v, ok := c.CustomFields[d.Key]
		if !ok || v == nil {
			cells = append(cells, "")
			continue
		}
		cells = append(cells, fmt.Sprint(v))
	}
	return cells
}

func newRowWriter(format string, w io.Writer) (rowWriter, error) {
	if format == XLSX {
		return newXLSXWriter(w)
	}
	// A byte order mark: Excel, the tool most exports are opened in, reads
	// UTF-8 only with one (Chinese text is garbled without it).
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return nil, err
	}
	return &csvWriter{w: csv.NewWriter(w)}, nil
}

type csvWriter struct{ w *csv.Writer }

func (c *csvWriter) row(cells []string) error {
	for i, s := range cells {
		cells[i] = defuse(s)
	}
	return c.w.Write(cells)
}

func (c *csvWriter) close() error {
	c.w.Flush()
	return c.w.Error()
}

// xlsxWriter writes one sheet through excelize's stream writer, which keeps
// rows on disk rather than in memory once there are many.
type xlsxWriter struct {
	f    *excelize.File
	sw   *excelize.StreamWriter
	w    io.Writer
	rows int
}

func newXLSXWriter(w io.Writer) (*xlsxWriter, error) {
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("xlsx: %w", err)
	}
	return &xlsxWriter{f: f, sw: sw, w: w}, nil
}

func (x *xlsxWriter) row(cells []string) error {
	x.rows++
	values := make([]any, len(cells))
	for i, c := range cells {
		// The cells are text cells, never formulas, as written; but one
		// edited in Excel (F2, Enter) or the sheet saved as CSV runs them.
		values[i] = defuse(c)
	}
	cell, err := excelize.CoordinatesToCellName(1, x.rows)
	if err != nil {
		return err
	}
	if err := x.sw.SetRow(cell, values); err != nil {
		return fmt.Errorf("xlsx row %d: %w", x.rows, err)
	}
	return nil
}

func (x *xlsxWriter) close() error {
	defer x.f.Close()
	if err := x.sw.Flush(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if err := x.f.Write(x.w); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}
