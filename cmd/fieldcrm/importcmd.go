package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/crm/imports"
	"github.com/fieldcrm/fieldcrm/internal/crm/sheets"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// importCommand imports customers (or their contacts, interactions, orders
// or payments) from a spreadsheet on this machine, in the
// foreground with a progress bar, as a user of the tenant (they own what is
// created; by default the tenant's first admin). It records the import as
// POST /v1/imports does, so GET /v1/imports/{id} and the failures CSV work
// for it too. It opens the storage serve is configured with: on the embedded
// engine stop the server first.
func importCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "tenant id (required)")
	file := fs.String("file", "", "the spreadsheet: .csv (UTF-8 or GBK) or .xlsx (required)")
	as := fs.String("as", "", "e-mail of the user who imports and owns the new customers (default: the tenant's first admin)")
	kind := fs.String("kind", crm.ImportCustomers, "what the file holds: "+strings.Join(crm.ImportKinds, ", "))
	onDuplicate := fs.String("on-duplicate", crm.OnDuplicateSkip, "a row matching an existing customer: skip, merge or flag")
	dryRun := fs.Bool("dry-run", false, "report what would happen; write nothing")
	mappingFile := fs.String("mapping", "", `JSON file: {"columns": {"<header>": "<field>|custom:<key>|ignore"}}`)
	failuresOut := fs.String("failures", "", "write the failed rows, and those skipped or merged as duplicates, to this CSV file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the import (not the start-up) to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tenant == "" || *file == "" {
		return usageError{"import: --tenant and --file are required"}
	}
	var mapping sheets.Mapping
	if *mappingFile != "" {
		raw, err := os.ReadFile(*mappingFile)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		if err := json.Unmarshal(raw, &mapping); err != nil {
			return fmt.Errorf("import: mapping %s: %w", *mappingFile, err)
		}
	}
	a, err := startCommandApp(ctx, getenv, stderr)
	defer a.Close(ctx)
	if err != nil {
		return err
	}
	user, err := importingUser(ctx, a.Store, *tenant, *as)
	if err != nil {
		return err
	}
	actor := models.Actor{TenantID: user.TenantID, UserID: user.ID, Role: user.Role, TeamID: user.TeamID}
	f, err := os.Open(*file)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	bar := &progressBar{w: stderr}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	started, err := a.Imports.Start(ctx, imports.Request{Actor: actor, Kind: *kind, OnDuplicate: *onDuplicate,
		DryRun: *dryRun, Mapping: mapping, FileName: filepath.Base(*file), Progress: bar.draw}, f)
	if err != nil {
		stopProfile()
		return fmt.Errorf("import: %w", err)
	}
	job, err := started.Wait(ctx)
	stopProfile()
	bar.finish()
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	fmt.Fprintf(stdout, "import %s: %d rows: %d created, %d merged, %d skipped, %d failed%s\n", job.ID, job.Done,
		job.Created, job.Merged, job.Skipped, job.Failed, map[bool]string{true: " (dry run: nothing written)"}[job.DryRun])
	if len(job.Unmapped) > 0 {
		fmt.Fprintf(stdout, "columns left out: %s\n", strings.Join(job.Unmapped, ", "))
	}
	if *failuresOut != "" && job.Failed+job.Skipped+job.Merged > 0 {
		return writeFailures(ctx, a.CRM, actor, job.ID, *failuresOut)
	}
	return nil
}

// importingUser is the user named by email in the tenant, or its first admin.
func importingUser(ctx context.Context, st *store.Store, tenant, email string) (models.User, error) {
	if email != "" {
		u, err := st.UserByEmail(ctx, email)
		if err != nil || u.TenantID != tenant || !u.Active {
			return models.User{}, fmt.Errorf("import: no active user %s in tenant %s", email, tenant)
		}
		return u, nil
	}
	admins, err := st.Users(ctx, tenant, models.UserFilter{Role: models.RoleAdmin, Limit: 1})
	if err != nil {
		return models.User{}, err
	}
	if len(admins) == 0 {
		return models.User{}, fmt.Errorf("import: tenant %s has no admin (is the id right?)", tenant)
	}
	return admins[0], nil
}

// progressBar draws an import's progress on one terminal line.
type progressBar struct {
	w io.Writer
}

func (b *progressBar) draw(im models.Import) {
	const width = 30
	filled := 0
	if im.Total > 0 {
		filled = min(width, im.Done*width/im.Total)
	}
	eta := time.Duration(im.ETASeconds * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(b.w, "\r[%s%s] %d/%d rows  %.0f rows/s  ETA %s  (%d failed)   ", strings.Repeat("=", filled),
		strings.Repeat(" ", width-filled), im.Done, im.Total, im.RowsPerSecond, eta, im.Failed)
}

func (b *progressBar) finish() { fmt.Fprintln(b.w) }

// writeFailures writes an import's failed, skipped and merged rows to a CSV
// file (sheets.WriteFailures).
func writeFailures(ctx context.Context, svc *crm.Service, a models.Actor, id, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	next := func(after string) ([]models.ImportFailure, error) { return svc.ImportFailures(ctx, a, id, after, 500) }
	first, err := next("")
	if err != nil {
		return err
	}
	skipped := func(page int) ([]models.SkippedRow, int, error) { return svc.SkippedRows(ctx, a, id, page, 500) }
	if err := sheets.WriteFailures(f, first, next, skipped); err != nil {
		return fmt.Errorf("import: write %s: %w", path, err)
	}
	return f.Close()
}
