package api

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/internal/crm/sheets"
)

// exportTimeout bounds how long one export may stream.
const exportTimeout = 30 * time.Minute

// exportCustomers serves GET /v1/exports/customers: the customers the caller
// may see, with the list API's filters and sort, as CSV or XLSX, streamed.
// Bad filters are refused before anything is sent; the export is in the
// audit log before its first row.
func (s *Server) exportCustomers(c *fiber.Ctx) error {
	o := filterOptions(c)
	format, lang := cmp.Or(query(c, "format"), sheets.CSV), cmp.Or(query(c, "lang"), "en")
	delete(o.Filters, "format")
	delete(o.Filters, "lang")
	a := actorOf(c)
	ctx := c.UserContext()
	st, err := s.crm.Settings(ctx, a)
	if err != nil {
		return err
	}
	exp, err := sheets.Start(ctx, s.crm.Customers, sheets.Request{Actor: a, Filters: o.Filters, Sort: o.Sort,
		Format: format, Lang: lang, CustomFields: st.CustomFields})
	if err != nil {
		return err
	}
	id, err := s.crm.LogExport(ctx, a, "customers", map[string]any{"format": format, "filters": o.Filters, "sort": o.Sort})
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, sheets.ContentType(format))
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="customers-%s.%s"`, time.Now().UTC().Format("20060102-150405"), format))
	c.Set("X-Export-ID", id)
	log := s.log.With("export", id, "tenant", a.TenantID, "user", a.UserID)
	var rows int
	streamBody(c, exportTimeout, format == sheets.CSV, func(ctx context.Context, w io.Writer) (err error) {
		rows, err = exp.Write(ctx, w)
		return err
	}, func(ctx context.Context, err error) {
		if err != nil {
			log.ErrorContext(ctx, "export broke off", "rows", rows, "err", err.Error())
			return
		}
		log.InfoContext(ctx, "export sent", "rows", rows, "format", format)
	})
	return nil
}
