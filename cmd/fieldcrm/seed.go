package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// seedCommand runs `fieldcrm seed --demo`: a new demo tenant with a year of
// a sales team's life (see demoSeeder), written through the CRM as the reps
// would have written it, for trying fieldcrm out and for checking reports
// against its records.
func seedCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "create a demo tenant (the one seed there is; required)")
	customers := fs.Int("customers", 2000, "customers in the demo tenant (each with its year of records)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same tenant, its times relative to now")
	domain := fs.String("email-domain", "demo.example.cn", "e-mail domain of the demo users (e-mails are unique across tenants)")
	password := fs.String("password", "demo-password", "password of every demo user")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the seeding to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case !*demo:
		return usageError{"seed: --demo is required"}
	case *customers < 1 || *customers > 1_000_000:
		return usageError{"seed: --customers must be from 1 to 1000000"}
	case len(*password) < 8:
		return usageError{"seed: --password must have at least 8 characters"}
	case !strings.Contains(*domain, ".") || strings.ContainsAny(*domain, "@ "):
		return usageError{"seed: --email-domain must be a domain such as demo.example.cn"}
	}
	a, err := startCommandApp(ctx, getenv, stderr)
	defer a.Close(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Minute)
	d, err := newDemoSeeder(a, demoOptions{Customers: *customers, Seed: *seed, Domain: *domain, Password: *password, End: now}, stderr)
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	err = d.run(ctx)
	stopProfile()
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	c := d.counts
	fmt.Fprintf(stdout, "demo tenant %s (%s)\n", d.admin.TenantID, demoCompany)
	fmt.Fprintf(stdout, "users: %d in %d teams; sign in as %s with password %s (every user has it)\n",
		c["users"], c["teams"], models.NormalizeEmail("admin@"+*domain), *password)
	fmt.Fprintf(stdout, "from %s to %s: %d customers, %d contacts, %d interactions, %d tasks, %d orders, %d payments, %d tickets, %d surveys, %d loyalty entries\n",
		d.start.Format(time.DateOnly), d.end.Format(time.DateOnly), c["customers"], c["contacts"], c["interactions"], c["tasks"],
		c["orders"], c["payments"], c["tickets"], c["surveys"], c["loyalty_entries"])
	return nil
}
