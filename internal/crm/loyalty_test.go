package crm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/redis/counter"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/cursor"
)

// errCrash stands for a process killed in the middle of a write: what was
// written stays, nothing after it runs.
var errCrash = errors.New("simulated crash")

// Where crashingStore stops a loyalty entry's insert.
const (
	noCrash           = iota
	crashBeforeInsert // the entry is never stored
	crashAfterInsert  // the entry is stored, the writer never hears of it
)

// crashingStore is the real store, but for inserts of loyalty entries, which
// it can stop as a crash would.
type crashingStore struct {
	*store.Store
	mode atomic.Int32
}

func (s *crashingStore) Insert(ctx context.Context, coll string, meta *models.Meta, doc any, entry models.AuditEntry) error {
	if coll != store.LoyaltyEntries {
		return s.Store.Insert(ctx, coll, meta, doc, entry)
	}
	switch s.mode.Load() {
	case crashBeforeInsert:
		return errCrash
	case crashAfterInsert:
		if err := s.Store.Insert(ctx, coll, meta, doc, entry); err != nil {
			return err
		}
		return errCrash
	}
	return s.Store.Insert(ctx, coll, meta, doc, entry)
}

func crashTenant(t *testing.T) (*crm.Service, *crashingStore, *testenv.Clock, models.Actor) {
	t.Helper()
	ctx := context.Background()
	st := &crashingStore{Store: env.Store(t)}
	rd := env.Redis(t)
	tenant := models.Tenant{ID: models.NewID(), Name: "Crash", CreatedAt: time.Now().UTC()}
	if err := st.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	sealer, _ := crm.NewSealer(bytes.Repeat([]byte{7}, 32))
	clock := testenv.NewClock(time.Now().UTC())
	svc, err := crm.New(crm.Options{Store: st, Counters: counter.New(rd.Client, rd.Prefix), Sealer: sealer,
		Sequencer: cursor.New(rd.Client, rd.Prefix+"sync:", 0, nil, st), Now: clock.Now, Logger: testenv.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st, clock, models.Actor{UserID: "rep-1", TenantID: tenant.ID, Role: models.RoleRep, TeamID: "team-1"}
}

// points writes a loyalty entry for customer.
func points(svc *crm.Service, a models.Actor, customer, kind string, n int64) error {
	_, err := svc.LoyaltyEntries.Create(context.Background(), a, models.LoyaltyEntry{
		ChildFields: models.ChildFields{CustomerID: customer}, Kind: kind, Points: n, Reason: "test"})
	return err
}

// balanceAndLedger reads a customer's balance and the sum of its entries.
func balanceAndLedger(t *testing.T, svc *crm.Service, a models.Actor, customer string) (balance, sum int64) {
	t.Helper()
	ctx := context.Background()
	c, err := svc.Customers.Get(ctx, a, customer)
	if err != nil {
		t.Fatal(err)
	}
	page, err := svc.LoyaltyEntries.List(ctx, a, crm.ListOptions{Filters: map[string]string{"customer_id": customer}, Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Data {
		sum += e.Delta()
	}
	return c.Loyalty.Balance, sum
}

func TestLoyaltyCrashMidWriteIsSettledByTheNextWrite(t *testing.T) {
	svc, st, clock, rep := crashTenant(t)
	c, err := svc.Customers.Create(context.Background(), rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Member"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := points(svc, rep, c.ID, models.PointsEarn, 1000); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		mode int32
		// want is the balance once the next write (an earn of 10) settled.
		want int64
	}{
		{"crash before the entry is stored", crashBeforeInsert, 1010},
		{"crash after the entry is stored", crashAfterInsert, 930},
	} {
		st.mode.Store(step.mode)
		if err := points(svc, rep, c.ID, models.PointsRedeem, 90); !errors.Is(err, errCrash) {
			t.Fatalf("%s: redemption answered %v", step.name, err)
		}
		st.mode.Store(noCrash)
		if err := points(svc, rep, c.ID, models.PointsEarn, 10); err != nil {
			t.Fatalf("%s: next write: %v", step.name, err)
		}
		if balance, sum := balanceAndLedger(t, svc, rep, c.ID); balance != sum || balance != step.want {
			t.Fatalf("%s: balance %d, ledger sum %d, want both %d", step.name, balance, sum, step.want)
		}
	}
	// The first crash left 90 points held for a redemption that was never
	// stored: they are not for spending until the hold expires.
	if err := points(svc, rep, c.ID, models.PointsRedeem, 930); err == nil {
		t.Fatal("points held by an unfinished redemption were redeemed")
	}
	clock.Advance(time.Hour)
	if err := points(svc, rep, c.ID, models.PointsRedeem, 930); err != nil {
		t.Fatalf("redeeming once the hold expired: %v", err)
	}
	if balance, sum := balanceAndLedger(t, svc, rep, c.ID); balance != 0 || sum != 0 {
		t.Fatalf("balance %d, ledger sum %d, want 0", balance, sum)
	}
}

// Writes cut off between storing their entry and settling the balance
// (earns as well as redemptions) leave a hold on the customer, and
// SettleHolds, what start-up runs, makes the balance the ledger's sum
// without waiting for the customer's next loyalty write. It touches only
// the customers holding something; holds of entries never stored stay
// until they expire, or go at once when the caller knows their writers are
// gone.
func TestLoyaltyWritesCutOffAreSettledBySettleHolds(t *testing.T) {
	svc, st, clock, rep := crashTenant(t)
	ctx := context.Background()
	c, err := svc.Customers.Create(ctx, rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Member"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := svc.Customers.Create(ctx, rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Settled"}})
	if err != nil {
		t.Fatal(err)
	}
	earner, err := svc.Customers.Create(ctx, rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Earner"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{c.ID, other.ID, earner.ID} {
		if err := points(svc, rep, id, models.PointsEarn, 1000); err != nil {
			t.Fatal(err)
		}
	}
	// In this order, as a redemption's hold sums the ledger.
	st.mode.Store(crashBeforeInsert)
	if err := points(svc, rep, c.ID, models.PointsRedeem, 30); !errors.Is(err, errCrash) {
		t.Fatalf("redemption never stored: %v", err)
	}
	st.mode.Store(crashAfterInsert)
	if err := points(svc, rep, c.ID, models.PointsRedeem, 90); !errors.Is(err, errCrash) {
		t.Fatalf("redemption: %v", err)
	}
	for _, id := range []string{c.ID, earner.ID} { // the earner's only write cut off is an earn
		if err := points(svc, rep, id, models.PointsEarn, 50); !errors.Is(err, errCrash) {
			t.Fatalf("earn: %v", err)
		}
	}
	st.mode.Store(noCrash)
	if balance, sum := balanceAndLedger(t, svc, rep, c.ID); balance != 1000 || sum != 960 {
		t.Fatalf("after the crashes: balance %d, ledger sum %d, want 1000 and 960", balance, sum)
	}
	untouched, _ := svc.Customers.Get(ctx, rep, other.ID)

	n, err := svc.SettleHolds(ctx, time.Time{})
	if err != nil || n != 2 {
		t.Fatalf("settle holds: %d customers, %v; want 2", n, err)
	}
	if balance, sum := balanceAndLedger(t, svc, rep, earner.ID); balance != 1050 || sum != 1050 {
		t.Fatalf("the earner after settling: balance %d, ledger sum %d, want 1050", balance, sum)
	}
	got, _ := svc.Customers.Get(ctx, rep, c.ID)
	if balance, sum := balanceAndLedger(t, svc, rep, c.ID); balance != 960 || sum != 960 || got.Loyalty.Available() != 930 {
		t.Fatalf("after settling: balance %d, ledger sum %d, available %d; want 960, 960, 930 (30 held)", balance, sum, got.Loyalty.Available())
	}
	if o, _ := svc.Customers.Get(ctx, rep, other.ID); o.Version != untouched.Version {
		t.Fatalf("a customer holding nothing was written: version %d, was %d", o.Version, untouched.Version)
	}
	// The writer of the unstored redemption is known gone: its hold goes.
	clock.Advance(time.Second)
	if n, err := svc.SettleHolds(ctx, clock.Now()); err != nil || n != 1 {
		t.Fatalf("settle holds of writers gone: %d customers, %v; want 1", n, err)
	}
	if got, _ := svc.Customers.Get(ctx, rep, c.ID); len(got.Loyalty.Held) != 0 || got.Loyalty.Available() != 960 {
		t.Fatalf("holds of writers gone: %+v", got.Loyalty)
	}
	if n, err := svc.SettleHolds(ctx, clock.Now()); err != nil || n != 0 {
		t.Fatalf("settle holds with none left: %d customers, %v", n, err)
	}
}

func TestLoyaltyConcurrentRetriedEarnsAndRedemptionsKeepBalanceAndLedgerEqual(t *testing.T) {
	svc, _, _, rep := crashTenant(t)
	ctx := context.Background()
	c, err := svc.Customers.Create(ctx, rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Busy member"}})
	if err != nil {
		t.Fatal(err)
	}
	// Writers earn and redeem at once; each entry is sent twice at the same
	// time, as a phone retrying a push does. Redemptions may be refused for
	// want of points, nothing else may fail.
	const writers, entries = 4, 6
	var negative atomic.Bool
	done := make(chan struct{})
	go func() { // the balance is never below zero, at any moment
		for {
			select {
			case <-done:
				return
			default:
			}
			if got, err := svc.Customers.Get(ctx, rep, c.ID); err == nil && got.Loyalty.Balance < 0 {
				negative.Store(true)
			}
		}
	}()
	errs := make(chan error, writers*entries*2)
	var wg sync.WaitGroup
	for w := range writers {
		for i := range entries {
			kind, n := models.PointsEarn, int64(10*(i+1))
			if (w+i)%2 == 1 {
				kind, n = models.PointsRedeem, int64(15*(i+1))
			}
			id := fmt.Sprintf("w%de%d", w, i)
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := svc.LoyaltyEntries.ApplyDeviceEdit(ctx, rep, crm.DeviceEdit{ID: id, Created: true, Columns: map[string]json.RawMessage{
						"customer_id": jsonOf(c.ID), "kind": jsonOf(kind), "points": jsonOf(n), "reason": jsonOf("busy"),
					}})
					var invalid *models.ValidationError
					if err != nil && !(kind == models.PointsRedeem && errors.As(err, &invalid)) {
						errs <- fmt.Errorf("%s %s %d: %w", id, kind, n, err)
					}
				}()
			}
		}
	}
	wg.Wait()
	close(done)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if negative.Load() {
		t.Error("the balance went below zero")
	}
	balance, sum := balanceAndLedger(t, svc, rep, c.ID)
	got, _ := svc.Customers.Get(ctx, rep, c.ID)
	if balance != sum || balance < 0 || len(got.Loyalty.Held) != 0 {
		t.Fatalf("balance %d, ledger sum %d, held %v", balance, sum, got.Loyalty.Held)
	}
}

func TestLoyaltyBalanceLeftOffTheLedgerIsRightAfterTheNextWrite(t *testing.T) {
	svc, _, _, rep := crashTenant(t)
	ctx := context.Background()
	c, err := svc.Customers.Create(ctx, rep, models.Customer{CustomerFields: models.CustomerFields{Name: "Drifted"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := points(svc, rep, c.ID, models.PointsEarn, 100); err != nil {
		t.Fatal(err)
	}
	// What the balance moved ahead of the ledger (earlier versions) left.
	if _, err := svc.Customers.Mutate(ctx, rep, c.ID, func(c *models.Customer) error { c.Loyalty.Balance = 1100; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := points(svc, rep, c.ID, models.PointsRedeem, 200); err == nil {
		t.Fatal("redeemed points the ledger never had")
	}
	if err := points(svc, rep, c.ID, models.PointsEarn, 10); err != nil {
		t.Fatal(err)
	}
	if balance, sum := balanceAndLedger(t, svc, rep, c.ID); balance != 110 || sum != 110 {
		t.Fatalf("balance %d, ledger sum %d, want 110", balance, sum)
	}
}

// jsonOf is v as JSON, for a device's columns.
func jsonOf(v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}
