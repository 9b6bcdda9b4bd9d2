package api

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
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
	// The body is written after this handler returns, so the stream gets a
	// context of its own, with the request's values and a deadline.
	streamCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exportTimeout)
	log := s.log.With("export", id, "tenant", a.TenantID, "user", a.UserID)
	conn := c.Context().Conn()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		n, err := exp.Write(streamCtx, &progressWriter{w: w, conn: conn})
		extendWriteDeadline(conn)
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		if err != nil {
			log.ErrorContext(streamCtx, "export broke off", "rows", n, "err", err.Error())
			return
		}
		log.InfoContext(streamCtx, "export sent", "rows", n, "format", format)
	})
	return nil
}
