package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/crm/imports"
	"github.com/fieldcrm/fieldcrm/internal/crm/sheets"
	"github.com/fieldcrm/fieldcrm/models"
)

// importResponse is an import's record with its first failed rows and its
// first rows skipped or merged as duplicates.
type importResponse struct {
	models.Import
	// Failures are the first 100 failed rows; GET /v1/imports/{id}/failures
	// has them all as CSV.
	Failures []models.ImportFailure `json:"failures"`
	// SkippedRows are the first 100 rows skipped or merged as duplicates,
	// each with the customer it matched and why; the CSV has them all too.
	SkippedRows []models.SkippedRow `json:"skipped_rows"`
}

// importForm is the multipart/form-data body of POST /v1/imports, as the
// OpenAPI document describes it; createImport reads these fields by name.
type importForm struct {
	// File is the spreadsheet: .csv (UTF-8, UTF-8 with BOM, GBK/GB18030) or .xlsx.
	File uploadedFile `json:"file"`
	// Kind is what the rows are (default customers).
	Kind string `json:"kind"`
	// OnDuplicate is what a customer row matching an existing customer does (default skip).
	OnDuplicate string `json:"on_duplicate"`
	// DryRun checks every row without writing any.
	DryRun bool `json:"dry_run"`
	// Mapping is JSON naming each column's field: {"columns": {"<header>": "<field>|custom:<key>|ignore"}}.
	Mapping string `json:"mapping"`
}

// fieldRules are the form's enumerations and required fields, for the OpenAPI document.
func (importForm) fieldRules() map[string]models.FieldRule {
	return map[string]models.FieldRule{
		"file":         {Required: true},
		"kind":         {Enum: crm.ImportKinds},
		"on_duplicate": {Enum: []string{crm.OnDuplicateSkip, crm.OnDuplicateMerge, crm.OnDuplicateFlag}},
	}
}

// uploadedFile is a file field of a multipart body.
type uploadedFile string

// shownRows is how many failed and skipped rows an import's record shows.
const shownRows = 100

// createImport serves POST /v1/imports: a multipart upload (file, and the
// optional fields kind, on_duplicate, dry_run and mapping) that starts a
// background import of customers, contacts, interactions, orders or
// payments (package imports) and answers 202 with its record. A file
// that cannot be imported at all is refused at once with 422.
func (s *Server) createImport(c *fiber.Ctx) error {
	fh, err := c.FormFile("file")
	if err != nil {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "file",
			Message: "send the spreadsheet as multipart/form-data field \"file\" (.csv or .xlsx)"}}}
	}
	// Copied: Fiber reuses the request's memory, and the import outlives it.
	req := imports.Request{Actor: actorOf(c), Kind: strings.Clone(c.FormValue("kind", crm.ImportCustomers)),
		OnDuplicate: strings.Clone(c.FormValue("on_duplicate", crm.OnDuplicateSkip)), FileName: strings.Clone(fh.Filename)}
	if raw := c.FormValue("dry_run"); raw != "" {
		if req.DryRun, err = strconv.ParseBool(raw); err != nil {
			return &models.ValidationError{Fields: []models.FieldError{{Field: "dry_run", Message: "must be true or false"}}}
		}
	}
	if raw := c.FormValue("mapping"); raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req.Mapping); err != nil {
			return &models.ValidationError{Fields: []models.FieldError{{Field: "mapping",
				Message: `must be JSON like {"columns": {"手机号码": "phones", "微信": "custom:wechat", "备注": "ignore"}}`}}}
		}
	}
	file, err := fh.Open()
	if err != nil {
		return fmt.Errorf("open the uploaded %s: %w", fh.Filename, err)
	}
	defer file.Close()
	job, err := s.imports.Start(c.UserContext(), req, file)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderLocation, "/v1/imports/"+job.Record().ID)
	return c.Status(fiber.StatusAccepted).JSON(importResponse{Import: job.Record(), Failures: []models.ImportFailure{}, SkippedRows: []models.SkippedRow{}})
}

func (s *Server) getImport(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx, a := c.UserContext(), actorOf(c)
	im, err := s.crm.Import(ctx, a, id)
	if err != nil {
		return err
	}
	failures, err := s.crm.ImportFailures(ctx, a, id, "", shownRows)
	if err != nil {
		return err
	}
	skipped, _, err := s.crm.SkippedRows(ctx, a, id, 1, shownRows)
	if err != nil {
		return err
	}
	return c.JSON(importResponse{Import: im, Failures: failures, SkippedRows: skipped[:min(len(skipped), shownRows)]})
}

// importFailures serves GET /v1/imports/{id}/failures: every failed row, and
// every row skipped or merged as a duplicate, as CSV (line, column, value,
// reason, outcome, matched_id, matched_number), UTF-8 with a byte order mark
// for Excel.
func (s *Server) importFailures(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx, a := c.UserContext(), actorOf(c)
	first, err := s.crm.ImportFailures(ctx, a, id, "", 500)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="import-`+id+`-failures.csv"`)
	streamBody(c, exportTimeout, true, func(ctx context.Context, w io.Writer) error {
		return sheets.WriteFailures(w, first, func(after string) ([]models.ImportFailure, error) {
			return s.crm.ImportFailures(ctx, a, id, after, 500)
		}, func(page int) ([]models.SkippedRow, int, error) {
			return s.crm.SkippedRows(ctx, a, id, page, 500)
		})
	}, func(ctx context.Context, err error) {
		if err != nil {
			s.log.ErrorContext(ctx, "import failures broke off", "import", id, "err", err.Error())
		}
	})
	return nil
}
