package crm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app/apptest"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// benchTenant is a tenant holding existing customers, written straight to the
// store (with their dedupe and search keys) so that setting up is quick.
func benchTenant(b *testing.B, existing int) (*crm.Service, models.Actor, *store.Store) {
	return benchTenantOn(b, env.Store(b), existing)
}

func benchTenantOn(b *testing.B, st *store.Store, existing int) (*crm.Service, models.Actor, *store.Store) {
	ctx := context.Background()
	tenant := models.Tenant{ID: models.NewID(), Name: "Bench", CreatedAt: time.Now().UTC()}
	if err := st.CreateTenant(ctx, tenant); err != nil {
		b.Fatal(err)
	}
	svc := apptest.New(b, apptest.Config(), st, env.Redis(b)).CRM
	rep := models.Actor{UserID: "rep-1", TenantID: tenant.ID, Role: models.RoleRep, TeamID: "team-1"}
	for i := range existing {
		c := storedCustomer(b, rep, i, models.CustomerFields{
			Name: fmt.Sprintf("Existing customer %d", i),
			ContactPoints: models.ContactPoints{Phones: []models.Phone{{Number: fmt.Sprintf("139%08d", i)}},
				Emails: []models.Email{{Address: fmt.Sprintf("c%d@example.com", i)}}},
		})
		if err := st.Insert(ctx, store.Customers, &c.Meta, c, models.AuditEntry{Action: "create"}); err != nil {
			b.Fatal(err)
		}
	}
	return svc, rep, st
}

// storedCustomer is the i-th customer of rep's tenant, owned by rep, as a
// create stores it (prepared, numbered, with its search keys).
func storedCustomer(b *testing.B, rep models.Actor, i int, fields models.CustomerFields) *models.Customer {
	settings := models.Settings{}.WithDefaults()
	c := &models.Customer{CustomerFields: fields}
	if err := c.Prepare(settings); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	c.Meta = models.Meta{ID: models.NewID(), TenantID: rep.TenantID, OwnerID: rep.UserID, TeamID: rep.TeamID, Version: 1, CreatedAt: now, UpdatedAt: now}
	c.Number = settings.CustomerNumber.Format(int64(i+1), now)
	c.RefreshSearchKeys()
	return c
}

// BenchmarkCreateCustomer measures a REST create: settings, duplicate check
// against the tenant's customers, number assignment, audit, insert.
func BenchmarkCreateCustomer(b *testing.B) {
	for _, existing := range []int{100, 2000} {
		b.Run(fmt.Sprintf("existing=%d", existing), func(b *testing.B) {
			svc, rep, _ := benchTenant(b, existing)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				in := models.Customer{CustomerFields: models.CustomerFields{Name: fmt.Sprintf("New %d", i),
					ContactPoints: models.ContactPoints{Phones: []models.Phone{{Number: fmt.Sprintf("137%08d", i)}}}}}
				if _, err := svc.CreateCustomer(ctx, rep, in, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCreateCustomersAtOnce measures REST creates made by several
// clients at once, as a team's phones and an import make them: their writes
// share the store's commits, so this is the rate the server sustains, where
// BenchmarkCreateCustomer is one client's latency.
func BenchmarkCreateCustomersAtOnce(b *testing.B) {
	svc, rep, _ := benchTenant(b, 2000)
	ctx := context.Background()
	var made atomic.Int64
	b.SetParallelism(4) // 4 per core: 8 clients on 2 cores, as bench api's creates
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := made.Add(1)
			in := models.Customer{CustomerFields: models.CustomerFields{Name: fmt.Sprintf("New %d", i),
				ContactPoints: models.ContactPoints{Phones: []models.Phone{{Number: fmt.Sprintf("137%08d", i)}}}}}
			if _, err := svc.CreateCustomer(ctx, rep, in, false); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(made.Load())/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkSearchCustomers measures look-up by phone (exact key) and by part of
// a name (substring) among 2,000 customers of a rep.
func BenchmarkSearchCustomers(b *testing.B) {
	svc, rep, _ := benchTenant(b, 2000)
	ctx := context.Background()
	for _, q := range []struct{ name, query string }{{"phone", "139 0000 1234"}, {"name", "customer 1234"}} {
		b.Run(q.name, func(b *testing.B) {
			for range b.N {
				page, err := svc.Customers.List(ctx, rep, crm.ListOptions{Filters: map[string]string{"q": q.query}, Limit: 20})
				if err != nil || len(page.Data) != 1 {
					b.Fatalf("found %d, %v", len(page.Data), err)
				}
			}
		})
	}
}

// BenchmarkGetCustomer measures reading one customer by id among 2,000.
func BenchmarkGetCustomer(b *testing.B) {
	svc, rep, _ := benchTenant(b, 2000)
	ctx := context.Background()
	created, err := svc.CreateCustomer(ctx, rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Target"}}, false)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := svc.Customers.Get(ctx, rep, created.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateCustomer measures one field edit, the unit of a sync push:
// read, version claim, write, audit. It compares the direct path (documents
// by _id straight to the embedded engine's tables, claim and record in one
// transaction) with the same store going through FerretDB for everything.
func BenchmarkUpdateCustomer(b *testing.B) {
	for _, path := range []string{"direct", "ferretdb"} {
		b.Run("path="+path, func(b *testing.B) {
			ctx := context.Background()
			cfg := env.StoreConfig(b)
			if path == "ferretdb" {
				cfg.Tables, cfg.ByID = nil, nil
			}
			st, err := store.Open(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.DropDatabase(ctx); _ = st.Close(ctx) })
			svc, rep, _ := benchTenantOn(b, st, 2000)
			created, err := svc.CreateCustomer(ctx, rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Target"}}, false)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := svc.Customers.Mutate(ctx, rep, created.ID, func(c *models.Customer) error {
					c.Industry = fmt.Sprint("industry ", i)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChangeStage measures a stage change, a write that appends to the
// customer's stage history (and, on the embedded engines, rewrites its rows
// of the side table of moves the funnel counts): each iteration moves
// another customer from lead to prospect.
func BenchmarkChangeStage(b *testing.B) {
	svc, rep, _ := benchTenant(b, 2000)
	ctx := context.Background()
	ids := make([]string, b.N)
	for i := range ids {
		c, err := svc.CreateCustomer(ctx, rep, models.Customer{CustomerFields: models.CustomerFields{Name: fmt.Sprint("Lead ", i), Stage: "lead"}}, false)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = c.ID
	}
	b.ResetTimer()
	for _, id := range ids {
		if _, err := svc.Customers.Mutate(ctx, rep, id, func(c *models.Customer) error {
			c.Stage = "prospect"
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListCustomers measures a page of 50 of a rep's 2,000 customers and
// an export of all of them, each customer stamped per field as a create
// through the sync push stamps it (a sync number and a device for every
// field).
func BenchmarkListCustomers(b *testing.B) {
	svc, rep, st := benchTenant(b, 0)
	ctx := context.Background()
	settings := models.Settings{}.WithDefaults()
	for i := range 2000 {
		c := models.Customer{CustomerFields: models.CustomerFields{
			Name: fmt.Sprintf("上海华泰机械%d有限公司", i), Region: "华东", Stage: "prospect", Tags: []string{"vip", "华东"},
			Address: models.Address{Province: "上海", City: "上海", Street: "浦东新区张江路 88 号"},
			ContactPoints: models.ContactPoints{Phones: []models.Phone{{Number: fmt.Sprintf("139%08d", i)}},
				Emails: []models.Email{{Address: fmt.Sprintf("c%d@example.com", i)}}},
		}}
		if err := c.Prepare(settings); err != nil {
			b.Fatal(err)
		}
		now := time.Now().UTC()
		seq := int64(i + 1)
		c.Meta = models.Meta{ID: models.NewID(), TenantID: rep.TenantID, OwnerID: rep.UserID, TeamID: rep.TeamID, Version: 1, CreatedAt: now, UpdatedAt: now,
			Seq: seq, FieldSeqs: map[string]int64{}, FieldDevices: map[string]string{}}
		c.Number = settings.CustomerNumber.Format(seq, now)
		c.RefreshSearchKeys()
		text, err := json.Marshal(c)
		if err != nil {
			b.Fatal(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(text, &fields); err != nil {
			b.Fatal(err)
		}
		for name := range fields {
			c.FieldSeqs[name], c.FieldDevices[name] = seq, "phone-0123456789abcd"
		}
		if err := st.Insert(ctx, store.Customers, &c.Meta, &c, models.AuditEntry{Action: "create"}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("page", func(b *testing.B) {
		for range b.N {
			page, err := svc.Customers.List(ctx, rep, crm.ListOptions{Limit: 50})
			if err != nil || len(page.Data) != 50 {
				b.Fatalf("listed %d, %v", len(page.Data), err)
			}
		}
	})
	b.Run("export", func(b *testing.B) {
		rows := 0
		for range b.N {
			err := svc.Customers.Each(ctx, rep, crm.ListOptions{}, func(models.Customer) error { rows++; return nil })
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkSearchShortChineseName measures a search for a rare two-character
// name (王伟: one customer in 600, as in the benchmark's names) and a common
// one-character surname (李: one in 20) among 20,000 customers with Chinese
// names, a page of 50: what a rep types into the app's search.
func BenchmarkSearchShortChineseName(b *testing.B) {
	svc, rep, st := benchTenant(b, 0)
	ctx := context.Background()
	surnames := []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
	given := []string{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞", "平", "刚", "桂英", "华", "飞", "鑫", "波", "斌", "宇", "浩", "凯"}
	const customers, batch = 20000, 500
	var records []models.Record
	for i := range customers {
		c := storedCustomer(b, rep, i, models.CustomerFields{
			Name:          string(surnames[i%len(surnames)]) + given[(i/len(surnames))%len(given)],
			CompanyName:   fmt.Sprintf("华泰机械%d有限公司", i),
			ContactPoints: models.ContactPoints{Phones: []models.Phone{{Number: fmt.Sprintf("139%08d", i)}}},
		})
		if records = append(records, c); len(records) == batch {
			if err := st.InsertBatch(ctx, store.Customers, records, models.AuditEntry{Action: "create"}); err != nil {
				b.Fatal(err)
			}
			records = nil
		}
	}
	for _, q := range []struct {
		name, needle string
		want         int
	}{{"rare 王伟", "王伟", 34}, {"common 李", "李", 50}} {
		b.Run(q.name, func(b *testing.B) {
			for range b.N {
				page, err := svc.Customers.List(ctx, rep, crm.ListOptions{Filters: map[string]string{"q": q.needle}, Limit: 50})
				if err != nil || len(page.Data) != q.want {
					b.Fatalf("found %d, %v; want %d", len(page.Data), err, q.want)
				}
			}
		})
	}
}
