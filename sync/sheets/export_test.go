package sheets_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"testing"

	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/crm"
	"github.com/fieldcrm/fieldcrm/sync/sheets"
)

// pagedCustomers serves n customers two at a time, as crm's List pages them.
type pagedCustomers struct {
	n     int
	calls int
}

func (p *pagedCustomers) List(_ context.Context, _ models.Actor, o crm.ListOptions) (crm.Page[models.Customer], error) {
	p.calls++
	start := 0
	if o.After != "" {
		start, _ = strconv.Atoi(o.After)
	}
	var page crm.Page[models.Customer]
	for i := start; i < min(start+2, p.n); i++ {
		c := models.Customer{Number: fmt.Sprintf("C%d", i)}
		c.Name = fmt.Sprintf("customer %d", i)
		c.CustomFields = map[string]any{"wechat": fmt.Sprintf("wx%d", i)}
		page.Data = append(page.Data, c)
	}
	if start+2 < p.n {
		next := strconv.Itoa(start + 2)
		page.NextAfter = &next
	}
	return page, nil
}

func TestExportStreamsEveryPage(t *testing.T) {
	src := &pagedCustomers{n: 7}
	req := sheets.Request{Actor: models.Actor{Role: models.RoleAdmin}, Format: sheets.CSV, Lang: "en",
		CustomFields: []models.CustomFieldDef{{Key: "wechat", Label: "WeChat", Type: models.FieldText}}}
	exp, err := sheets.Start(context.Background(), src, req)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n, err := exp.Write(context.Background(), &out)
	if err != nil || n != 7 || src.calls != 4 {
		t.Fatalf("wrote %d rows in %d pages: %v", n, src.calls, err)
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
	for _, req := range []sheets.Request{{Format: "pdf", Lang: "en"}, {Format: sheets.CSV, Lang: "fr"}} {
		if _, err := sheets.Start(context.Background(), &pagedCustomers{}, req); err == nil {
			t.Errorf("%+v accepted", req)
		}
	}
}
