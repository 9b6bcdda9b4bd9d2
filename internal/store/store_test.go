package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/store/embedded"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func newUser(tenant, email string) models.User {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return models.User{
		ID: models.NewID(), TenantID: tenant, Email: email, Name: "Ana", Role: models.RoleRep,
		TimeZone: "UTC", Locale: "en", Active: true, PasswordHash: "x", CreatedAt: now, UpdatedAt: now,
	}
}

func TestMigrateIsIdempotentAndRecordsVersions(t *testing.T) {
	ctx := context.Background()
	cfg := env.StoreConfig(t)
	st, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.DropDatabase(ctx); _ = st.Close(ctx) })

	first, err := st.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Applied) == 0 || first.Current != first.Applied[len(first.Applied)-1] {
		t.Fatalf("first run applied %v, current %d", first.Applied, first.Current)
	}
	second, err := st.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Applied) != 0 || second.Current != first.Current || second.IDIndexesNew != 0 {
		t.Fatalf("second run did work: %+v", second)
	}
}

func TestConcurrentMigrationsFromTwoReplicasBothSucceed(t *testing.T) {
	ctx := context.Background()
	cfg := env.StoreConfig(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := store.Open(ctx, cfg)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close(ctx)
			_, errs[i] = st.Migrate(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, _ := store.Open(ctx, cfg)
	_ = st.DropDatabase(ctx)
	_ = st.Close(ctx)
}

func TestEmbeddedSQLiteIDLookupUsesIndex(t *testing.T) {
	if env.SQLiteDir() == "" {
		t.Skip("PostgreSQL backend: FerretDB's own _id index serves lookups there")
	}
	ctx := context.Background()
	cfg := env.StoreConfig(t)
	st, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.DropDatabase(ctx); _ = st.Close(ctx) })
	status, err := st.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.IDIndexesNew == 0 {
		t.Fatal("migrate created no _id lookup index")
	}
	plan, err := embedded.ExplainIDLookup(ctx, cfg.SQLiteDir, cfg.Database, "users")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "USING INDEX") || strings.Contains(plan, "SCAN") {
		t.Fatalf("lookup by _id does not use the index; plan:\n%s", plan)
	}
}

func TestUserEmailIsUniqueAcrossTenants(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	if err := st.CreateUser(ctx, newUser("t1", "ana@example.com")); err != nil {
		t.Fatal(err)
	}
	err := st.CreateUser(ctx, newUser("t2", "ana@example.com"))
	if !errors.Is(err, models.ErrConflict) {
		t.Fatalf("second user with the same e-mail: got %v, want ErrConflict", err)
	}
}

func TestUserOfAnotherTenantIsNotFound(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	u := newUser("t1", "bo@example.com")
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := st.User(ctx, "t2", u.ID); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	got, err := st.User(ctx, "t1", u.ID)
	if err != nil || got.Email != u.Email || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if err := st.UpdateUser(ctx, "t2", u.ID, map[string]any{"name": "x"}); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("update across tenants: got %v, want ErrNotFound", err)
	}
}

func TestUsersFilterByTeamsAndPage(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	var ids []string
	for i, team := range []string{"a", "a", "b", "c"} {
		u := newUser("t1", string(rune('a'+i))+"@example.com")
		u.TeamID = team
		ids = append(ids, u.ID)
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	other := newUser("t2", "z@example.com")
	other.TeamID = "a"
	if err := st.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	got, err := st.Users(ctx, "t1", models.UserFilter{TeamIDs: []string{"a"}, OrUserID: ids[3]})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("team a plus one user: got %d users", len(got))
	}
	page1, err := st.Users(ctx, "t1", models.UserFilter{Limit: 2})
	if err != nil || len(page1) != 2 {
		t.Fatalf("page 1: %d, %v", len(page1), err)
	}
	page2, err := st.Users(ctx, "t1", models.UserFilter{Limit: 2, AfterID: page1[1].ID})
	if err != nil || len(page2) != 2 || page2[0].ID <= page1[1].ID {
		t.Fatalf("page 2: %+v, %v", page2, err)
	}
}

// Of many concurrent uses of one refresh token, exactly one may win: the claim is
// an insert under a unique _id, atomic on FerretDB too.
func TestClaimRotationHasExactlyOneWinner(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	const racers = 8
	var wg sync.WaitGroup
	results := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = st.ClaimRotation(ctx, "hash-1", time.Now())
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, models.ErrConflict):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d claims won, want exactly 1", wins)
	}
}

func TestRevokeSessionKeepsFirstReason(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	sess := models.Session{ID: models.NewID(), TenantID: "t1", UserID: "u1", DeviceID: "d", CreatedAt: time.Now()}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeSession(ctx, sess.ID, "logout", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeSession(ctx, sess.ID, "refresh token reuse", time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := st.Session(ctx, sess.ID)
	if err != nil || got.RevokedAt == nil || got.RevokeReason != "logout" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestUsersOnlyOneUserStillPages(t *testing.T) {
	ctx := context.Background()
	st := env.Store(t)
	u := newUser("t1", "solo@example.com")
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	first, err := st.Users(ctx, "t1", models.UserFilter{OnlyUserID: u.ID, Limit: 1})
	if err != nil || len(first) != 1 {
		t.Fatalf("first page: %v %v", first, err)
	}
	next, err := st.Users(ctx, "t1", models.UserFilter{OnlyUserID: u.ID, AfterID: u.ID, Limit: 1})
	if err != nil || len(next) != 0 {
		t.Fatalf("page after the only user: %v %v", next, err)
	}
}
