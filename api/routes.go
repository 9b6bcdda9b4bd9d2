package api

import (
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/crm/sheets"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// route is one endpoint: how Fiber serves it and how the OpenAPI document
// describes it. Registering through this table is what keeps the document whole.
type route struct {
	method  string
	path    string // Fiber syntax: /v1/users/:id
	tag     string
	summary string
	auth    bool
	// request and response are zero values of the body types, for the schemas.
	request  any
	response any
	// media are the types of a success body that is not JSON (a CSV).
	media []string
	// unhealthy says a 503 answers the response type (a probe), not a problem.
	unhealthy bool
	// multipart says the request is multipart/form-data whose fields are
	// request's (an upload), not JSON.
	multipart bool
	status    int   // success status
	errors    []int // error statuses besides those every route of its kind gives (see statuses)
	// query declares the query parameters the handler reads; a request
	// naming another is refused (declaredQuery).
	query []param
	// ifMatch says the handler reads If-Match (a record's version).
	ifMatch bool
	// headers are response headers of the success status besides those
	// the response type implies (a record's ETag).
	headers []header
	handler fiber.Handler
}

// header is a response header a route sends.
type header struct{ name, doc string }

// Response headers of particular routes.
var (
	locationHeader = header{"Location", "the path of what was created"}
	hasMoreHeader  = header{"X-Sync-Has-More", "true when another page of changes follows (as has_more in the body)"}
	recordsHeader  = header{"X-Sync-Records", "the number of records in this page, for a progress bar"}
	untilHeader    = header{"X-Sync-Until", "the sync number this round of pages runs up to, for a progress bar"}
	exportIDHeader = header{"X-Export-ID", "the id of this export's entry in the audit log"}
)

func (s *Server) routeTable() []route {
	const (
		tagAuth    = "auth"
		tagUsers   = "users"
		tagTeams   = "teams"
		tagSystem  = "system"
		tagCRM     = "customers"
		tagWork    = "activities"
		tagSales   = "sales"
		tagCare    = "service"
		tagAdmin   = "administration"
		tagSync    = "sync"
		tagPush    = "reminders and push"
		tagPrivacy = "privacy"
		tagReports = "reports"
	)
	c := s.crm
	pullParams := []param{
		{name: "last_pulled_at", typ: "integer", nullText: true, doc: "the timestamp of the previous pull (its answer's timestamp); absent or null on a first sync"},
		{name: "schema_version", typ: "integer", min: 1, max: watermelon.SchemaVersion, doc: "the schema version of the app's local database (see GET /v1/sync/schema)"},
		{name: "migration", jsonSchema: watermelon.Migration{}, nullText: true, doc: "WatermelonDB's migration object as JSON ({from, tables, columns}): the full records of the tables and columns the app's schema gained; null or absent otherwise"},
		{name: "turbo", typ: "boolean", doc: "true on a first sync (last_pulled_at null, no migration): the whole first sync in one response, streamed, for WatermelonDB's Turbo Login (has_more false; no X-Sync-Records header)"},
	}
	reportsWith := func(extra ...param) []param { return append(slices.Clone(reportParams), extra...) }
	routes := []route{
		{method: "POST", path: "/v1/auth/signup", tag: tagAuth, summary: "Create a tenant and its first admin; returns tokens",
			request: models.Signup{}, response: signupResponse{}, status: 201, errors: []int{400, 403, 409, 415, 422, 429}, handler: s.signup},
		{method: "POST", path: "/v1/auth/login", tag: tagAuth, summary: "Sign in with e-mail and password on a device",
			request: models.Login{}, response: accounts.Tokens{}, status: 200, errors: []int{400, 401, 415, 422, 429}, handler: s.login},
		{method: "POST", path: "/v1/auth/refresh", tag: tagAuth, summary: "Exchange a refresh token for new tokens (rotation; reuse revokes the session)",
			request: refreshRequest{}, response: accounts.Tokens{}, status: 200, errors: []int{400, 401, 415, 422, 429}, handler: s.refresh},
		{method: "POST", path: "/v1/auth/logout", tag: tagAuth, summary: "End this session: its access and refresh tokens stop working",
			auth: true, status: 204, handler: s.logout},
		{method: "GET", path: "/v1/me", tag: tagUsers, summary: "The signed-in user, their tenant and the teams they manage",
			auth: true, response: accounts.Profile{}, status: 200, handler: s.me},
		{method: "POST", path: "/v1/users", tag: tagUsers, summary: "Create a user (admins: anyone; managers: reps in their teams)",
			auth: true, request: models.NewUser{}, response: models.User{}, status: 201, errors: []int{400, 403, 409, 415, 422, 429},
			headers: []header{locationHeader}, handler: createOne("/v1/users", s.accounts.CreateUser, func(u models.User) string { return u.ID })},
		{method: "GET", path: "/v1/users", tag: tagUsers, summary: "List the users you may see",
			auth: true, response: page[models.User]{}, status: 200, handler: s.listUsers, query: []param{
				limitParam, afterParam,
				{name: "role", enum: models.RoleNames, doc: "only users of this role"},
				{name: "active", typ: "boolean", doc: "only active (true) or deactivated (false) users"},
			}},
		{method: "GET", path: "/v1/users/:id", tag: tagUsers, summary: "One user",
			auth: true, response: models.User{}, status: 200, errors: []int{404}, handler: readOne(s.accounts.User)},
		{method: "PATCH", path: "/v1/users/:id", tag: tagUsers, summary: "Change a user's profile, role, team, manager, activity or password",
			auth: true, request: models.UserPatch{}, response: models.User{}, status: 200, errors: []int{400, 403, 404, 415, 422, 429}, handler: s.patchUser},
		{method: "POST", path: "/v1/teams", tag: tagTeams, summary: "Create a team (admins)",
			auth: true, request: models.NewTeam{}, response: models.Team{}, status: 201, errors: []int{400, 403, 415, 422},
			headers: []header{locationHeader}, handler: createOne("/v1/teams", s.accounts.CreateTeam, func(t models.Team) string { return t.ID })},
		{method: "GET", path: "/v1/teams", tag: tagTeams, summary: "List the teams you may see",
			auth: true, response: page[models.Team]{}, status: 200, handler: s.listTeams},
		{method: "GET", path: "/v1/teams/:id", tag: tagTeams, summary: "One team",
			auth: true, response: models.Team{}, status: 200, errors: []int{404}, handler: readOne(s.accounts.Team)},
		{method: "GET", path: "/healthz", tag: tagSystem, summary: "Liveness: the process serves and its loops turn", response: healthResponse{}, status: 200, errors: []int{503}, unhealthy: true, handler: s.healthz},
		{method: "GET", path: "/readyz", tag: tagSystem, summary: "Readiness: started and not shutting down; each dependency's state (a failing one makes it unready only past FIELDCRM_READY_DEPENDENCY_GRACE)", response: healthResponse{}, status: 200, errors: []int{503}, unhealthy: true, handler: s.readyz},
		{method: "GET", path: "/v1/openapi.json", tag: tagSystem, summary: "This OpenAPI 3.1 document", status: 200, handler: s.openAPI},

		{method: "GET", path: "/v1/settings", tag: tagAdmin, summary: "The tenant's CRM settings (numbering, phone region, tiers, SLAs, custom fields)",
			auth: true, response: models.Settings{}, status: 200, handler: s.getSettings},
		{method: "PATCH", path: "/v1/settings", tag: tagAdmin, summary: "Change the tenant's CRM settings (admins)",
			auth: true, request: models.Settings{}, response: models.Settings{}, status: 200, errors: []int{400, 403, 415, 422}, handler: s.patchSettings},
		{method: "GET", path: "/v1/audit", tag: tagAdmin, summary: "Audit log, newest first (admins)",
			auth: true, response: auditResponse{}, status: 200, errors: []int{403}, handler: s.audit, query: []param{
				limitParam,
				{name: "collection", doc: "only entries of this collection (customers, tasks…)"},
				{name: "record_id", doc: "only entries of this record"},
				{name: "before", format: "date-time", doc: "only entries before this time: the next_before of the previous page"},
			}},
		{method: "POST", path: "/v1/pool/reclaim", tag: tagAdmin, summary: "Return idle customers to the public pool now (admins; also runs hourly)",
			auth: true, response: reclaimResponse{}, status: 200, errors: []int{403}, handler: s.reclaimPool},

		{method: "POST", path: "/v1/customers", tag: tagCRM, summary: "Create a customer; a match with existing ones is refused (409) unless ?on_duplicate=flag",
			auth: true, request: models.Customer{}, response: models.Customer{}, status: 201, errors: []int{409}, handler: s.createCustomer, query: []param{
				{name: "on_duplicate", enum: []string{"reject", "flag"}, doc: "reject (default): a customer matching existing ones is refused with 409; flag: it is created, flagged as a possible duplicate"},
			}, headers: []header{locationHeader}},
		{method: "GET", path: "/v1/duplicates", tag: tagCRM, summary: "Customers flagged as possible duplicates",
			auth: true, response: crm.Page[models.Customer]{}, status: 200, handler: s.duplicates, query: listParams(c.Customers, true, "duplicate")},
		{method: "GET", path: "/v1/customers/:id/timeline", tag: tagCRM, summary: "Everything that happened with a customer, newest first",
			auth: true, response: timelineResponse{}, status: 200, errors: []int{404}, handler: s.timeline},
		{method: "POST", path: "/v1/customers/:id/merge", tag: tagCRM, summary: "Merge other customers into this one (records move, they become tombstones)",
			auth: true, request: mergeRequest{}, response: models.Customer{}, status: 200, errors: []int{400, 403, 404, 415, 422}, handler: withBody(s.merge)},
		{method: "POST", path: "/v1/customers/:id/assign", tag: tagCRM, summary: "Give a customer, its records and open tasks to another owner",
			auth: true, request: assignRequest{}, response: models.Customer{}, status: 200, errors: []int{400, 403, 404, 415, 422}, handler: withBody(s.assign)},
		{method: "POST", path: "/v1/customers/:id/claim", tag: tagCRM, summary: "Take a customer from the public pool",
			auth: true, response: models.Customer{}, status: 200, errors: []int{404, 409}, handler: readOne(c.Claim)},
		{method: "POST", path: "/v1/imports", tag: tagCRM, summary: "Import customers, contacts, interactions, orders or payments from a spreadsheet: multipart field file (.csv in UTF-8, UTF-8 with BOM or GBK/GB18030, or .xlsx), kind=customers|contacts|interactions|orders|payments (records name their customer by number, old reference, id or company name; payments their order by its old number; amounts in main units such as 1,280.50), on_duplicate=skip|merge|flag (customers), dry_run=true|false, mapping (JSON: {\"columns\": {\"<header>\": \"<field>|custom:<key>|ignore\"}}); runs in the background: 202 and the import's record",
			auth: true, multipart: true, request: importForm{}, response: importResponse{}, status: 202, handler: s.createImport, headers: []header{locationHeader}},
		{method: "GET", path: "/v1/imports/:id", tag: tagCRM, summary: "An import's progress (rows done of total, rate, ETA) and result (created, merged, skipped, failed), with its first 100 failed rows and its first 100 rows skipped or merged as duplicates (line, action, reason, matched_id, matched_number)",
			auth: true, response: importResponse{}, status: 200, errors: []int{404}, handler: s.getImport},
		{method: "GET", path: "/v1/imports/:id/failures", tag: tagCRM, summary: "Every failed row of an import, and every row skipped or merged as a duplicate, in line order, as CSV: line, column, value, reason, outcome (failed, skipped or merged), matched_id, matched_number",
			auth: true, status: 200, media: []string{"text/csv"}, handler: s.importFailures},
		{method: "GET", path: "/v1/reports/customers", tag: tagReports, summary: "Customers by stage, type, source, region, industry and value tier, and new customers per week and month. " + crm.CustomerReportDefinition,
			auth: true, response: crm.CustomerReport{}, status: 200, handler: report(c.CustomerReport), query: reportParams},
		{method: "GET", path: "/v1/reports/funnel", tag: tagReports, summary: "Conversion between lifecycle stages and time spent in each. " + crm.FunnelDefinition,
			auth: true, response: funnelResponse{}, status: 200, handler: report(s.funnelReport), query: reportParams},
		{method: "GET", path: "/v1/reports/sales", tag: tagReports, summary: "Top customers by revenue, outstanding balances and credit ratings, customers at risk (?idle_days=30). " + crm.SalesDefinition,
			auth: true, response: crm.SalesReport{}, status: 200, handler: s.salesReport, query: reportsWith(
				param{name: "idle_days", typ: "integer", min: 1, max: 3650, doc: "days without an interaction that put a customer at risk (default 30)"})},
		{method: "GET", path: "/v1/reports/activity", tag: tagReports, summary: "Rep activity: interactions per week and channel, visits with check-in, follow-ups on time and overdue. " + crm.ActivityDefinition,
			auth: true, response: activityResponse{}, status: 200, handler: report(s.activityReport), query: reportParams},
		{method: "GET", path: "/v1/reports/service", tag: tagReports, summary: "Tickets by type and status, SLA breaches, resolution time, CSAT and NPS over time and per topic. " + crm.ServiceDefinition,
			auth: true, response: crm.ServiceReport{}, status: 200, handler: report(c.ServiceReport), query: reportParams},
		{method: "GET", path: "/v1/reports/loyalty", tag: tagReports, summary: "Points earned, redeemed, expired and adjusted; members per tier. " + crm.LoyaltyDefinition,
			auth: true, response: crm.LoyaltyReport{}, status: 200, handler: report(c.LoyaltyReport), query: reportParams},
		{method: "GET", path: "/v1/reports/rfm", tag: tagReports, summary: "RFM segmentation from orders. " + crm.RFMDefinition,
			auth: true, response: crm.RFMReport{}, status: 200, handler: report(c.RFMReport), query: reportParams},
		{method: "POST", path: "/v1/reports/rfm/refresh", tag: tagReports, summary: "Write every customer's RFM segment to its value_tier now (admins)",
			auth: true, response: rfmRefreshResponse{}, status: 200, errors: []int{403}, handler: s.refreshRFM},
		{method: "GET", path: "/v1/exports/customers", tag: tagCRM, summary: "Export the customers you see as CSV (UTF-8 with BOM) or Excel: ?format=csv|xlsx&lang=en|zh plus the filters and sort of GET /v1/customers; streamed; phones, e-mails, birth dates and ID numbers masked unless you are an admin; every export is in the audit log (X-Export-ID)",
			auth: true, status: 200, errors: []int{403}, media: []string{sheets.ContentType(sheets.CSV), sheets.ContentType(sheets.XLSX)}, handler: s.exportCustomers, headers: []header{exportIDHeader}, query: append([]param{
				{name: "format", enum: []string{sheets.CSV, sheets.XLSX}, doc: "csv (default; UTF-8 with a byte order mark) or xlsx"},
				{name: "lang", enum: []string{"en", "zh"}, doc: "language of the column headings (default en)"},
			}, listParams(c.Customers, false)...)},
		{method: "GET", path: "/v1/customers/:id/personal-data", tag: tagPrivacy, summary: "Access request: everything stored about a customer, deleted and merged records, conflicts, inbox entries and version history included (admins)",
			auth: true, response: crm.PersonalData{}, status: 200, errors: []int{403, 404}, handler: readOne(c.PersonalData)},
		{method: "POST", path: "/v1/customers/:id/erase", tag: tagPrivacy, summary: "Erasure request: removes the customer's personal data (names, ways to reach them, addresses, ID number, free text) from it, its records and their history; amounts, dates, stages and ratings stay; devices receive it at their next pull (admins)",
			auth: true, response: crm.Erasure{}, status: 200, errors: []int{403, 404}, handler: readOne(c.Erase)},
		{method: "POST", path: "/v1/customers/:id/release", tag: tagCRM, summary: "Return a customer to the public pool",
			auth: true, response: models.Customer{}, status: 200, errors: []int{403, 404, 409}, handler: readOne(c.Release)},
		{method: "GET", path: "/v1/sync/schema", tag: tagSync, summary: "The synced tables and columns (WatermelonDB types) and the schema version",
			auth: true, response: watermelon.Schema{}, status: 200, handler: s.syncSchema},
		{method: "GET", path: "/v1/sync/models", tag: tagSync, summary: "A WatermelonDB app's data layer for one schema version, generated: schema.ts, migrations.ts, types.ts and models.ts (what `fieldcrm schema` and the package's CLI write)",
			auth: true, response: syncModels{}, status: 200, handler: s.syncModels, query: []param{
				{name: "version", typ: "integer", min: 1, max: watermelon.SchemaVersion, doc: "the schema version to generate; the current one when absent"}}},
		{method: "GET", path: "/v1/sync/pull", tag: tagSync, summary: "WatermelonDB pull: changes after last_pulled_at, one page (has_more, X-Sync-Has-More)",
			auth: true, response: watermelon.PullResult{}, status: 200, errors: []int{410, 503}, handler: s.syncPull, query: pullParams, headers: []header{hasMoreHeader, recordsHeader, untilHeader}},
		{method: "POST", path: "/v1/sync/push", tag: tagSync, summary: "WatermelonDB push: apply a device's changes (field-level merge, conflicts recorded)",
			auth: true, request: watermelon.PushRequest{}, response: watermelon.PushResult{}, status: 200, errors: []int{410, 503}, handler: s.syncPush, query: []param{
				{name: "last_pulled_at", typ: "integer", required: true, doc: "the timestamp of this device's last pull"},
			}},
		{method: "GET", path: "/v1/conflicts", tag: tagSync, summary: "Sync conflicts on records you see",
			auth: true, response: crm.Page[models.Conflict]{}, status: 200, handler: listRecords(c.Conflicts, ""), query: listParams(c.Conflicts, true)},
		{method: "GET", path: "/v1/conflicts/:id", tag: tagSync, summary: "One sync conflict: both values, both authors",
			auth: true, response: models.Conflict{}, status: 200, errors: []int{404}, handler: readOne(c.Conflicts.Get)},
		{method: "POST", path: "/v1/conflicts/:id/resolve", tag: tagSync, summary: "Keep the value the policy kept, or revert to the other",
			auth: true, request: resolveRequest{}, response: models.Conflict{}, status: 200, errors: []int{400, 403, 404, 409, 415, 422}, handler: withBody(s.resolve)},
		{method: "POST", path: "/v1/tickets/:id/comments", tag: tagCare, summary: "Comment on a service ticket",
			auth: true, request: commentRequest{}, response: models.Ticket{}, status: 200, errors: []int{400, 404, 415, 422}, handler: withBody(s.comment)},
	}
	customers := recordRoutes("customers", tagCRM, "customer", c.Customers, false)
	routes = append(routes, customers[1:]...) // POST /v1/customers is createCustomer above
	routes = append(routes, recordRoutes("contacts", tagCRM, "contact", c.Contacts, false)...)
	routes = append(routes, recordRoutes("interactions", tagWork, "interaction (call, visit, message…)", c.Interactions, false)...)
	routes = append(routes, recordRoutes("tasks", tagWork, "follow-up task", c.Tasks, false)...)
	routes = append(routes, recordRoutes("orders", tagSales, "order", c.Orders, false)...)
	routes = append(routes, recordRoutes("payments", tagSales, "payment", c.Payments, false)...)
	routes = append(routes, recordRoutes("tickets", tagCare, "service ticket", c.Tickets, false)...)
	routes = append(routes, recordRoutes("surveys", tagCare, "satisfaction survey", c.Surveys, false)...)
	routes = append(routes, recordRoutes("loyalty_entries", tagSales, "loyalty points entry (append-only)", c.LoyaltyEntries, true)...)
	routes = append(routes,
		route{method: "POST", path: "/v1/devices", tag: tagPush, summary: "Register or refresh a device of the signed-in user for pushes (a token moving from another device leaves it)",
			auth: true, request: models.Device{}, response: models.Device{}, status: 200, errors: []int{400, 415, 422}, handler: s.registerDevice},
		route{method: "GET", path: "/v1/devices", tag: tagPush, summary: "The signed-in user's devices",
			auth: true, response: devicesResponse{}, status: 200, handler: s.listDevices},
		route{method: "DELETE", path: "/v1/devices/:id", tag: tagPush, summary: "Stop pushes to a device of the signed-in user",
			auth: true, status: 204, handler: s.unregisterDevice},
		route{method: "GET", path: "/v1/notifications", tag: tagPush, summary: "The signed-in user's inbox, also synced as a table",
			auth: true, response: crm.Page[models.Notification]{}, status: 200, handler: listRecords(c.Notifications, ""), query: listParams(c.Notifications, true)},
		route{method: "POST", path: "/v1/notifications/:id/read", tag: tagPush, summary: "Mark a notification read",
			auth: true, response: models.Notification{}, status: 200, errors: []int{404}, handler: readOne(c.MarkRead)},
		route{method: "GET", path: "/v1/tasks/:id/reminders", tag: tagPush, summary: "The reminders of a task: when each fires and whether it was sent, cancelled or failed",
			auth: true, response: remindersResponse{}, status: 200, errors: []int{404}, handler: s.taskReminders},
	)
	routes = append(routes,
		nestedList("contacts", tagCRM, c.Contacts),
		nestedList("interactions", tagWork, c.Interactions),
		nestedList("tasks", tagWork, c.Tasks),
		nestedList("orders", tagSales, c.Orders),
		nestedList("payments", tagSales, c.Payments),
		nestedList("tickets", tagCare, c.Tickets),
		nestedList("surveys", tagCare, c.Surveys),
		nestedList("loyalty_entries", tagSales, c.LoyaltyEntries),
	)
	for i := range routes {
		routes[i].handler = declaredQuery(routes[i], routes[i].handler)
	}
	return routes
}
