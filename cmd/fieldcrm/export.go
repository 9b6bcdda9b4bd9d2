package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fieldcrm/fieldcrm/internal/crm/sheets"
	"github.com/fieldcrm/fieldcrm/models"
)

// cliActorID is who the audit log names for what an operator does with the
// fieldcrm command (as opposed to a user through the API).
const cliActorID = "operator-cli"

// keyValues is a repeatable --filter key=value flag.
type keyValues map[string]string

func (kv keyValues) String() string { return fmt.Sprint(map[string]string(kv)) }

func (kv keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	kv[k] = v
	return nil
}

// exportCommand writes a tenant's customers to a CSV or Excel file, with
// everything in clear (an operator is an admin), and records the export in
// the tenant's audit log. It opens the storage that serve would (the same
// environment variables). On the embedded engine, stop the server first or
// use GET /v1/exports/customers instead: two processes must not share it.
func exportCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "tenant id (required)")
	format := fs.String("format", sheets.CSV, "csv or xlsx")
	lang := fs.String("lang", "en", "header language: en or zh")
	out := fs.String("out", "-", "file to write, - for standard output")
	sort := fs.String("sort", "", "sort, as ?sort= of GET /v1/customers (e.g. -updated_at)")
	filters := keyValues{}
	fs.Var(filters, "filter", "key=value, as the filters of GET /v1/customers (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tenant == "" {
		return usageError{"export: --tenant is required"}
	}
	a, err := startCommandApp(ctx, getenv, stderr)
	defer a.Close(ctx)
	if err != nil {
		return err
	}
	actor := models.Actor{TenantID: *tenant, UserID: cliActorID, Role: models.RoleAdmin}
	st, err := a.CRM.Settings(ctx, actor)
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("export: no tenant %q", *tenant)
	}
	if err != nil {
		return err
	}
	exp, err := sheets.Start(ctx, a.CRM.Customers, sheets.Request{Actor: actor, Filters: filters, Sort: *sort,
		Format: *format, Lang: *lang, CustomFields: st.CustomFields})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := a.CRM.LogExport(ctx, actor, "customers", map[string]any{"format": *format, "filters": map[string]string(filters), "sort": *sort}); err != nil {
		return err
	}
	dst, finish := stdout, func(ok bool) error { return nil }
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		dst, finish = f, func(ok bool) error {
			err := f.Close()
			if !ok {
				_ = os.Remove(*out) // no half file that looks like a whole one
			}
			return err
		}
	}
	w := bufio.NewWriter(dst)
	n, err := exp.Write(ctx, w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := finish(err == nil); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: after %d customers: %w", n, err)
	}
	fmt.Fprintf(stderr, "exported %d customers\n", n)
	return nil
}
