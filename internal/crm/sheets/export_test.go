package sheets_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"testing"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/crm/sheets"
	"github.com/fieldcrm/fieldcrm/models"
)

// fakeCustomers serves n customers, as crm's Customers would.
type fakeCustomers struct{ n int }

func (p *fakeCustomers) CheckList(_ context.Context, _ models.Actor, o crm.ListOptions) error {
	if _, bad := o.Filters["bad"]; bad {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "bad", Message: "is not a filter"}}}
	}
	return nil
}

func (p *fakeCustomers) Each(_ context.Context, _ models.Actor, _ crm.ListOptions, fn func(models.Customer) error) error {
	for i := range p.n {
		c := models.Customer{Number: fmt.Sprintf("C%d", i)}
		c.Name = fmt.Sprintf("customer %d", i)
		c.CustomFields = map[string]any{"wechat": fmt.Sprintf("wx%d", i)}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func TestExportWritesEveryCustomer(t *testing.T) {
	src := &fakeCustomers{n: 7}
	req := sheets.Request{Actor: models.Actor{Role: models.RoleAdmin}, Format: sheets.CSV, Lang: "en",
		CustomFields: []models.CustomFieldDef{{Key: "wechat", Label: "WeChat", Type: models.FieldText}}}
	exp, err := sheets.Start(context.Background(), src, req)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n, err := exp.Write(context.Background(), &out)
	if err != nil || n != 7 {
		t.Fatalf("wrote %d rows: %v", n, err)
	}
	rows, err := csv.NewReader(bytes.NewReader(out.Bytes()[3:])).ReadAll()
	if err != nil || len(rows) != 8 {
		t.Fatalf("%d rows: %v", len(rows), err)
	}
	last := rows[7]
	if last[0] != "C6" || last[1] != "customer 6" || last[len(last)-1] != "wx6" || rows[0][len(rows[0])-1] != "WeChat" {
		t.Fatalf("last row %v, header %v", last, rows[0])
	}
}

func TestExportRefusesUnknownFormats(t *testing.T) {
	for _, req := range []sheets.Request{{Format: "pdf", Lang: "en"}, {Format: sheets.CSV, Lang: "fr"}, {Format: sheets.CSV, Lang: "en", Filters: map[string]string{"bad": "1"}}} {
		if _, err := sheets.Start(context.Background(), &fakeCustomers{}, req); err == nil {
			t.Errorf("%+v accepted", req)
		}
	}
}
