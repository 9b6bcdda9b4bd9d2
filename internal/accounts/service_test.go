package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/redis/ratelimit"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/internal/testenv"
	"github.com/fieldcrm/fieldcrm/models"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// Limits of the fixture's limiters, small so tests reach them quickly.
const (
	loginFailuresPerEmail = 3
	signupsPerAddress     = 2
)

const password = "correct horse battery"

// clock is the fixture's time, moved by the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// forgetter records what the service asked the device registry to forget.
type forgetter struct {
	mu    sync.Mutex
	calls []string
}

func (f *forgetter) ForgetUser(_ context.Context, tenant, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "all devices of "+user)
	return nil
}

func (f *forgetter) ForgetUserExcept(_ context.Context, keep models.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "devices of "+keep.UserID+" but "+keep.DeviceID)
	return nil
}

func (f *forgetter) ForgetSession(_ context.Context, s models.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "devices of the session on "+s.DeviceID)
	return nil
}

func (f *forgetter) said() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// fixture is an accounts service on a database and a Redis of its own.
type fixture struct {
	t       *testing.T
	svc     *accounts.Service
	store   *store.Store
	clock   *clock
	devices *forgetter
}

func newFixture(t *testing.T, edit ...func(o *accounts.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, store: env.Store(t), clock: &clock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, devices: &forgetter{}}
	rd := env.Redis(t)
	signer, err := accounts.NewSigner([]byte("a secret of at least thirty-two bytes!"), f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	o := accounts.Options{
		Store:          f.store,
		Limiter:        ratelimit.NewFailures(rd.Client, rd.Prefix+"email:", loginFailuresPerEmail, time.Hour),
		IPLimiter:      ratelimit.NewFailures(rd.Client, rd.Prefix+"ip:", 100, time.Hour),
		SignupLimiter:  ratelimit.NewFailures(rd.Client, rd.Prefix+"signup:", signupsPerAddress, time.Hour),
		RefreshLimiter: ratelimit.NewFailures(rd.Client, rd.Prefix+"refresh:", 100, time.Hour),
		Signer:         signer,
		Password:       accounts.CheapPasswordParams,
		Devices:        f.devices,
		Now:            f.clock.Now,
		Logger:         testenv.DiscardLogger(),
	}
	for _, e := range edit {
		e(&o)
	}
	if f.svc, err = accounts.New(o); err != nil {
		t.Fatal(err)
	}
	return f
}

// signup creates a tenant whose admin is email, and returns the admin signed in.
func (f *fixture) signup(company, email string) (accounts.Tokens, models.Actor) {
	f.t.Helper()
	tokens, _, err := f.svc.Signup(context.Background(), models.Signup{CompanyName: company, Name: "Admin", Email: email, Password: password}, "")
	if err != nil {
		f.t.Fatalf("signup %s: %v", email, err)
	}
	return tokens, f.actor(tokens)
}

// actor authenticates an access token, failing the test when it does not.
func (f *fixture) actor(tokens accounts.Tokens) models.Actor {
	f.t.Helper()
	a, _, err := f.svc.Authenticate(context.Background(), tokens.AccessToken)
	if err != nil {
		f.t.Fatalf("authenticate: %v", err)
	}
	return a
}

func (f *fixture) login(email, device string) accounts.Tokens {
	f.t.Helper()
	tokens, err := f.svc.Login(context.Background(), models.Login{Email: email, Password: password, DeviceID: device}, "198.51.100.1")
	if err != nil {
		f.t.Fatalf("login %s on %s: %v", email, device, err)
	}
	return tokens
}

// team creates a team managed by managerID as admin.
func (f *fixture) team(admin models.Actor, name, managerID string) models.Team {
	f.t.Helper()
	team, err := f.svc.CreateTeam(context.Background(), admin, models.NewTeam{Name: name, ManagerID: managerID})
	if err != nil {
		f.t.Fatal(err)
	}
	return team
}

// user creates a user as by.
func (f *fixture) user(by models.Actor, email string, role models.Role, teamID string) models.User {
	f.t.Helper()
	u, err := f.svc.CreateUser(context.Background(), by, models.NewUser{Email: email, Name: "User", Password: password, Role: role, TeamID: teamID})
	if err != nil {
		f.t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

func (f *fixture) tenantCount() int {
	f.t.Helper()
	ids, err := f.store.TenantIDs(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return len(ids)
}

func isUnauthenticated(err error) bool {
	var ae *accounts.AuthError
	return errors.As(err, &ae) && errors.Is(err, models.ErrUnauthenticated)
}

func isRateLimited(err error) bool {
	var rl *models.RateLimitedError
	return errors.As(err, &rl) && rl.RetryAfterSeconds > 0
}

func TestSignupCreatesATenantWithItsAdminSignedIn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tokens, admin, err := f.svc.Signup(ctx, models.Signup{CompanyName: "  Acme Trading ", Name: "Ana", Email: "Ana@Acme.TEST", Password: password, DeviceID: "phone-1"}, "203.0.113.9")
	if err != nil {
		t.Fatal(err)
	}
	if admin.Role != models.RoleAdmin || !admin.Active || admin.Email != "ana@acme.test" || admin.PasswordHash == password {
		t.Fatalf("first user: %+v", admin)
	}
	a := f.actor(tokens)
	if a.UserID != admin.ID || a.TenantID != admin.TenantID || a.Role != models.RoleAdmin || a.DeviceID != "phone-1" {
		t.Fatalf("signed in as %+v", a)
	}
	me, err := f.svc.Me(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if me.Tenant.ID != admin.TenantID || me.Tenant.Name != "Acme Trading" {
		t.Fatalf("tenant %+v", me.Tenant)
	}
}

// A sign-up with an e-mail already in use, in any tenant and any case, is
// refused as a conflict on the e-mail, and the tenant it created is undone.
func TestSignupWithTakenEmailConflictsAndLeavesNoTenant(t *testing.T) {
	f := newFixture(t)
	f.signup("First", "taken@acme.test")
	before := f.tenantCount()
	_, _, err := f.svc.Signup(context.Background(), models.Signup{CompanyName: "Second", Name: "B", Email: "TAKEN@acme.test", Password: password}, "")
	var invalid *models.ValidationError
	if !errors.Is(err, models.ErrConflict) || !errors.As(err, &invalid) || invalid.Fields[0].Field != "email" {
		t.Fatalf("second sign-up: %v", err)
	}
	if after := f.tenantCount(); after != before {
		t.Fatalf("tenants %d after a refused sign-up, %d before", after, before)
	}
}

// Bad input is refused field by field and stores nothing; every sign-up from
// an address counts, refused or not, and past the limit the address waits
// while another address and the commands (no address) are not held up.
func TestSignupRefusesBadInputAndLimitsEachAddress(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bad := []models.Signup{
		{CompanyName: "Acme", Name: "A", Email: "not an e-mail", Password: password},
		{CompanyName: "Acme", Name: "A", Email: "short@acme.test", Password: "short"},
	}
	for _, in := range bad {
		var invalid *models.ValidationError
		if _, _, err := f.svc.Signup(ctx, in, "203.0.113.1"); !errors.As(err, &invalid) {
			t.Fatalf("sign-up %+v: %v", in, err)
		}
	}
	if n := f.tenantCount(); n != 0 {
		t.Fatalf("%d tenants after refused sign-ups", n)
	}
	// Both refused sign-ups counted: the address is at its limit.
	good := models.Signup{CompanyName: "Acme", Name: "A", Email: "good@acme.test", Password: password}
	if _, _, err := f.svc.Signup(ctx, good, "203.0.113.1"); !isRateLimited(err) {
		t.Fatalf("sign-up past the limit: %v", err)
	}
	if n := f.tenantCount(); n != 0 {
		t.Fatalf("%d tenants after a limited sign-up", n)
	}
	if _, _, err := f.svc.Signup(ctx, good, "203.0.113.2"); err != nil {
		t.Fatalf("sign-up from another address: %v", err)
	}
	for i := range signupsPerAddress + 1 {
		in := models.Signup{CompanyName: "Cmd", Name: "A", Email: fmt.Sprintf("cmd%d@acme.test", i), Password: password}
		if _, _, err := f.svc.Signup(ctx, in, ""); err != nil {
			t.Fatalf("sign-up without an address: %v", err)
		}
	}
}

// A wrong password, an unknown e-mail and a deactivated account all get the
// same answer; failures for an e-mail count up to its limit, after which even
// the right password waits; a success before the limit starts the count again.
func TestLoginFailuresLookAlikeAndAreLimitedPerEmail(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, admin := f.signup("Acme", "admin@acme.test")
	team := f.team(admin, "North", "")
	gone := f.user(admin, "gone@acme.test", models.RoleRep, team.ID)
	inactive := false
	if _, err := f.svc.PatchUser(ctx, admin, gone.ID, models.UserPatch{Active: &inactive}); err != nil {
		t.Fatal(err)
	}
	attempt := func(email, pw string) error {
		_, err := f.svc.Login(ctx, models.Login{Email: email, Password: pw, DeviceID: "d"}, "198.51.100.7")
		return err
	}
	var reasons []string
	for _, c := range []struct{ email, password string }{
		{"admin@acme.test", "wrong password!"}, {"nobody@acme.test", password}, {"gone@acme.test", password},
	} {
		err := attempt(c.email, c.password)
		if !isUnauthenticated(err) {
			t.Fatalf("login %s: %v", c.email, err)
		}
		reasons = append(reasons, err.Error())
	}
	if reasons[0] != reasons[1] || reasons[1] != reasons[2] {
		t.Fatalf("failures tell causes apart: %q", reasons)
	}

	for range loginFailuresPerEmail - 2 {
		if err := attempt("admin@acme.test", "wrong password!"); !isUnauthenticated(err) {
			t.Fatal(err)
		}
	}
	if err := attempt("admin@acme.test", password); err != nil {
		t.Fatalf("right password one failure short of the limit: %v", err)
	}
	for range loginFailuresPerEmail {
		if err := attempt("admin@acme.test", "wrong password!"); !isUnauthenticated(err) {
			t.Fatalf("failure after a success: %v", err)
		}
	}
	if err := attempt("admin@acme.test", password); !isRateLimited(err) {
		t.Fatalf("right password past the limit: %v", err)
	}
}

// A refresh token is exchanged once. Of concurrent exchanges of one token
// exactly one wins; presenting it again ends the session, with every token
// issued in it.
func TestRefreshTokenRotatesExactlyOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first, _ := f.signup("Acme", "admin@acme.test")

	const racers = 6
	results := make([]accounts.Tokens, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.svc.Refresh(ctx, first.RefreshToken, "198.51.100.3")
		}()
	}
	wg.Wait()
	var next accounts.Tokens
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			next = results[i]
		case !isUnauthenticated(err):
			t.Fatalf("refresh: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent refreshes of one token won", wins, racers)
	}
	// The losers presented a used token: the session is over for everyone.
	if _, err := f.svc.Refresh(ctx, next.RefreshToken, "198.51.100.3"); !isUnauthenticated(err) {
		t.Fatalf("refresh with the winner's token after reuse: %v", err)
	}
	if _, _, err := f.svc.Authenticate(ctx, next.AccessToken); !isUnauthenticated(err) {
		t.Fatalf("access token of the revoked session: %v", err)
	}
	// Whoever replayed the token stops getting the session's pushes too.
	if said := f.devices.said(); len(said) == 0 || said[0] != "devices of the session on signup" {
		t.Fatalf("devices forgotten after the reuse: %q", said)
	}

	// Without a race: each token works once, the next one goes on working.
	second := f.login("admin@acme.test", "tablet")
	third, err := f.svc.Refresh(ctx, second.RefreshToken, "198.51.100.3")
	if err != nil {
		t.Fatal(err)
	}
	if third.RefreshToken == second.RefreshToken {
		t.Fatal("refresh returned the same refresh token")
	}
	if _, err := f.svc.Refresh(ctx, third.RefreshToken, "198.51.100.3"); err != nil {
		t.Fatalf("refresh with the rotated token: %v", err)
	}
}

// A refresh token works until its 30 days are up, not after.
func TestRefreshTokenExpiresAfter30Days(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tokens, _ := f.signup("Acme", "admin@acme.test")
	f.clock.Advance(accounts.RefreshTokenTTL - time.Minute)
	tokens, err := f.svc.Refresh(ctx, tokens.RefreshToken, "")
	if err != nil {
		t.Fatalf("refresh a minute before expiry: %v", err)
	}
	f.clock.Advance(accounts.RefreshTokenTTL + time.Second)
	if _, err := f.svc.Refresh(ctx, tokens.RefreshToken, ""); !isUnauthenticated(err) {
		t.Fatalf("refresh after 30 days: %v", err)
	}
}

// Logout ends its own session (refresh and access tokens) and no other.
func TestLogoutEndsOnlyItsSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signup("Acme", "admin@acme.test")
	phone, tablet := f.login("admin@acme.test", "phone"), f.login("admin@acme.test", "tablet")
	_, session, err := f.svc.Authenticate(ctx, phone.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Logout(ctx, session); err != nil {
		t.Fatal(err)
	}
	if said := f.devices.said(); !slices.Equal(said, []string{"devices of the session on phone"}) {
		t.Fatalf("devices forgotten at logout: %q", said)
	}
	if _, _, err := f.svc.Authenticate(ctx, phone.AccessToken); !isUnauthenticated(err) {
		t.Fatalf("access token after logout: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, phone.RefreshToken, ""); !isUnauthenticated(err) {
		t.Fatalf("refresh token after logout: %v", err)
	}
	f.actor(tablet)
	if _, err := f.svc.Refresh(ctx, tablet.RefreshToken, ""); err != nil {
		t.Fatalf("the other session's refresh: %v", err)
	}
}

// Changing one's own password ends every other session and forgets every
// other device, and keeps the session (and device) that made the change; a
// wrong current password changes nothing. An admin's reset ends them all.
func TestPasswordChangeEndsOtherSessionsAndKeepsTheCurrentOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, admin := f.signup("Acme", "admin@acme.test")
	team := f.team(admin, "North", "")
	rep := f.user(admin, "rep@acme.test", models.RoleRep, team.ID)
	phone, tablet := f.login("rep@acme.test", "phone"), f.login("rep@acme.test", "tablet")
	me := f.actor(phone)

	wrong, newPassword := "not my password", "a new password, long enough"
	var invalid *models.ValidationError
	if _, err := f.svc.PatchUser(ctx, me, rep.ID, models.UserPatch{Password: &newPassword, CurrentPassword: &wrong}); !errors.As(err, &invalid) || invalid.Fields[0].Field != "current_password" {
		t.Fatalf("change with a wrong current password: %v", err)
	}
	f.actor(tablet)
	f.login("rep@acme.test", "laptop") // the old password still works
	if said := f.devices.said(); len(said) != 0 {
		t.Fatalf("a refused change forgot devices: %q", said)
	}

	current := password
	if _, err := f.svc.PatchUser(ctx, me, rep.ID, models.UserPatch{Password: &newPassword, CurrentPassword: &current}); err != nil {
		t.Fatal(err)
	}
	f.actor(phone)
	if _, err := f.svc.Refresh(ctx, phone.RefreshToken, ""); err != nil {
		t.Fatalf("the session that changed the password: %v", err)
	}
	if _, _, err := f.svc.Authenticate(ctx, tablet.AccessToken); !isUnauthenticated(err) {
		t.Fatalf("another session's access token: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, tablet.RefreshToken, ""); !isUnauthenticated(err) {
		t.Fatalf("another session's refresh token: %v", err)
	}
	if _, err := f.svc.Login(ctx, models.Login{Email: "rep@acme.test", Password: password, DeviceID: "x"}, "198.51.100.1"); !isUnauthenticated(err) {
		t.Fatalf("login with the old password: %v", err)
	}
	if said := f.devices.said(); !slices.Equal(said, []string{"devices of " + rep.ID + " but phone"}) {
		t.Fatalf("devices forgotten: %q", said)
	}

	reset := "reset by the admin, long"
	if _, err := f.svc.PatchUser(ctx, admin, rep.ID, models.UserPatch{Password: &reset}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Authenticate(ctx, phone.AccessToken); !isUnauthenticated(err) {
		t.Fatalf("the rep's session after an admin's reset: %v", err)
	}
	if said := f.devices.said(); said[len(said)-1] != "all devices of "+rep.ID {
		t.Fatalf("devices forgotten on a reset: %q", said)
	}
}

// Who may change roles, and that a change applies to tokens already issued:
// the user and their teams are read on every request.
func TestRoleChangesFollowTheRulesAndApplyAtOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, admin := f.signup("Acme", "admin@acme.test")
	lead := f.user(admin, "lead@acme.test", models.RoleManager, "")
	north := f.team(admin, "North", lead.ID)
	rep := f.user(admin, "rep@acme.test", models.RoleRep, north.ID)
	leadTokens, repTokens := f.login("lead@acme.test", "d"), f.login("rep@acme.test", "d")
	manager := f.actor(leadTokens)
	if !slices.Equal(manager.ManagedTeamIDs, []string{north.ID}) {
		t.Fatalf("manager's teams %v", manager.ManagedTeamIDs)
	}

	roleOf := func(id string) models.Role {
		t.Helper()
		u, err := f.store.User(ctx, admin.TenantID, id)
		if err != nil {
			t.Fatal(err)
		}
		return u.Role
	}
	toManager, toAdmin, toRep := models.RoleManager, models.RoleAdmin, models.RoleRep
	refusals := []struct {
		name   string
		by     models.Actor
		target string
		patch  models.UserPatch
	}{
		{"a manager promotes their rep", manager, rep.ID, models.UserPatch{Role: &toManager}},
		{"a rep promotes themselves", f.actor(repTokens), rep.ID, models.UserPatch{Role: &toAdmin}},
		{"the admin demotes themselves", admin, admin.UserID, models.UserPatch{Role: &toRep}},
	}
	for _, c := range refusals {
		before := roleOf(c.target)
		if _, err := f.svc.PatchUser(ctx, c.by, c.target, c.patch); !errors.Is(err, models.ErrForbidden) {
			t.Fatalf("%s: %v", c.name, err)
		}
		if after := roleOf(c.target); after != before {
			t.Fatalf("%s: role %s became %s", c.name, before, after)
		}
	}

	if _, err := f.svc.PatchUser(ctx, admin, rep.ID, models.UserPatch{Role: &toManager}); err != nil {
		t.Fatal(err)
	}
	if a := f.actor(repTokens); a.Role != models.RoleManager {
		t.Fatalf("after promotion the rep's token acts as %s", a.Role)
	}
	if _, err := f.svc.PatchUser(ctx, admin, lead.ID, models.UserPatch{Role: &toRep, TeamID: &north.ID}); err != nil {
		t.Fatal(err)
	}
	if a := f.actor(leadTokens); a.Role != models.RoleRep || len(a.ManagedTeamIDs) != 0 {
		t.Fatalf("after demotion the lead's token acts as %s of %v", a.Role, a.ManagedTeamIDs)
	}

	// Deactivation ends the sessions and forgets the devices at once.
	inactive := false
	if _, err := f.svc.PatchUser(ctx, admin, rep.ID, models.UserPatch{Active: &inactive}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Authenticate(ctx, repTokens.AccessToken); !isUnauthenticated(err) {
		t.Fatalf("deactivated user's access token: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, repTokens.RefreshToken, ""); !isUnauthenticated(err) {
		t.Fatalf("deactivated user's refresh token: %v", err)
	}
	if said := f.devices.said(); !slices.Contains(said, "all devices of "+rep.ID) {
		t.Fatalf("devices forgotten: %q", said)
	}
}

// No more password hashes run at once than the limit allows, whatever the
// number of callers; those that find no slot are told to retry, and are
// not counted as failed sign-ins.
func TestPasswordHashingIsBounded(t *testing.T) {
	f := newFixture(t, func(o *accounts.Options) {
		o.Password = accounts.DefaultPasswordParams // slow enough for callers to meet
		o.Hashing = accounts.HashLimit{Concurrent: 1, Queue: 1, Wait: time.Millisecond}
	})
	ctx := context.Background()
	f.signup("Acme", "admin@acme.test")
	const callers = 8
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.Login(ctx, models.Login{Email: "admin@acme.test", Password: password, DeviceID: "d"}, fmt.Sprint("198.51.100.", i))
		}()
	}
	wg.Wait()
	succeeded, busy := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			succeeded++
		case isRateLimited(err):
			busy++
		default:
			t.Fatalf("login: %v", err)
		}
	}
	if peak := f.svc.PeakPasswordHashes(); peak != 1 {
		t.Fatalf("%d hashes ran at once, limit 1", peak)
	}
	if succeeded == 0 || busy == 0 {
		t.Fatalf("%d signed in, %d told to retry: want some of each", succeeded, busy)
	}
	// Being told to wait was no failed sign-in: the e-mail is not blocked.
	f.login("admin@acme.test", "d")
}

// Nothing of one tenant is visible or changeable from another: its users,
// its teams, and its people as references.
func TestAnotherTenantsUsersAndTeamsAreNeverVisible(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, ours := f.signup("Ours", "admin@ours.test")
	_, theirs := f.signup("Theirs", "admin@theirs.test")
	theirLead := f.user(theirs, "lead@theirs.test", models.RoleManager, "")
	theirTeam := f.team(theirs, "Their team", theirLead.ID)
	theirRep := f.user(theirs, "rep@theirs.test", models.RoleRep, theirTeam.ID)

	for _, id := range []string{theirs.UserID, theirLead.ID, theirRep.ID} {
		if _, err := f.svc.User(ctx, ours, id); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("their user %s: %v", id, err)
		}
		name := "Renamed"
		if _, err := f.svc.PatchUser(ctx, ours, id, models.UserPatch{Name: &name}); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("patch their user %s: %v", id, err)
		}
		u, err := f.store.User(ctx, theirs.TenantID, id)
		if err != nil || u.Name == name {
			t.Fatalf("their user after our patch: %+v, %v", u, err)
		}
	}
	listed, err := f.svc.Users(ctx, ours, accounts.UserListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].ID != ours.UserID {
		t.Fatalf("our user list: %+v", listed)
	}
	if _, err := f.svc.Team(ctx, ours, theirTeam.ID); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("their team: %v", err)
	}
	teams, err := f.svc.Teams(ctx, ours)
	if err != nil || len(teams) != 0 {
		t.Fatalf("our teams: %+v, %v", teams, err)
	}
	var invalid *models.ValidationError
	if _, err := f.svc.CreateUser(ctx, ours, models.NewUser{Email: "x@ours.test", Name: "X", Password: password, Role: models.RoleRep, TeamID: theirTeam.ID}); !errors.As(err, &invalid) || invalid.Fields[0].Field != "team_id" {
		t.Fatalf("a rep in their team: %v", err)
	}
	if _, err := f.svc.CreateTeam(ctx, ours, models.NewTeam{Name: "Ours", ManagerID: theirLead.ID}); !errors.As(err, &invalid) || invalid.Fields[0].Field != "manager_id" {
		t.Fatalf("a team managed by their manager: %v", err)
	}
	if listed, _ := f.svc.Users(ctx, ours, accounts.UserListOptions{}); len(listed) != 1 {
		t.Fatalf("refused creations stored users: %+v", listed)
	}
}
