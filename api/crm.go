package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// recordService is what the generic record handlers need of crm.Records.
type recordService[R any] interface {
	listedCollection
	Create(ctx context.Context, a models.Actor, in R) (R, error)
	Get(ctx context.Context, a models.Actor, id string) (R, error)
	List(ctx context.Context, a models.Actor, o crm.ListOptions) (crm.Page[R], error)
	Update(ctx context.Context, a models.Actor, id string, ifMatch int64, apply func(dst any) error) (R, error)
	Delete(ctx context.Context, a models.Actor, id string, ifMatch int64) error
}

// recordRoutes are the five routes of a record collection: create, list, get,
// update (If-Match aware) and delete (tombstone).
func recordRoutes[R any](collection, tag, noun string, svc recordService[R], appendOnly bool) []route {
	base := "/v1/" + collection
	var zero R
	routes := []route{
		{method: "POST", path: base, tag: tag, summary: "Create a " + noun, auth: true, request: zero, response: zero,
			status: 201, errors: []int{403}, handler: createOne(base, svc.Create, recordID[R]), headers: []header{locationHeader}},
		{method: "GET", path: base, tag: tag, summary: "List the " + collection + " you may see",
			auth: true, response: crm.Page[R]{}, status: 200, handler: listRecords(svc, ""), query: listParams(svc, true)},
		{method: "GET", path: base + "/:id", tag: tag, summary: "One " + noun + " (ETag carries its version)",
			auth: true, response: zero, status: 200, errors: []int{404}, handler: readOne(svc.Get)},
	}
	if appendOnly {
		return routes
	}
	return append(routes,
		route{method: "PATCH", path: base + "/:id", tag: tag, summary: "Change fields of a " + noun + " (If-Match: version, else last writer wins)",
			auth: true, request: zero, response: zero, status: 200, errors: []int{403, 412}, ifMatch: true, handler: patchRecord(svc)},
		route{method: "DELETE", path: base + "/:id", tag: tag, summary: "Delete a " + noun + " (kept as a tombstone for sync)",
			auth: true, status: 204, errors: []int{403, 412}, ifMatch: true, handler: deleteRecord(svc)},
	)
}

// recordID is the id of a CRM record, for Location headers.
func recordID[R any](rec R) string { return models.MetaOf(&rec).ID }

// nestedList serves GET /v1/customers/:id/<collection>: the list of one customer's records.
func nestedList[R any](collection, tag string, svc recordService[R]) route {
	return route{method: "GET", path: "/v1/customers/:id/" + collection, tag: tag, summary: "The " + collection + " of one customer",
		auth: true, response: crm.Page[R]{}, status: 200, handler: listRecords(svc, "id"), query: listParams(svc, true, "customer_id")}
}

// decodeRecord decodes a request body onto a record, refusing the fields only
// the server writes (number, version, owner…) so a client learns they are ignored.
// Other bodies are decoded as they are.
func decodeRecord(c *fiber.Ctx, dst any) error {
	var keys map[string]json.RawMessage
	if _, isRecord := dst.(models.Record); isRecord && json.Unmarshal(c.Body(), &keys) == nil {
		v := &models.ValidationError{}
		server := models.ServerFields(dst)
		for k := range keys {
			if slices.Contains(server, k) {
				v.Add(k, "is set by the server and cannot be written")
			}
		}
		if err := v.Err(); err != nil {
			slices.SortFunc(v.Fields, func(a, b models.FieldError) int { return strings.Compare(a.Field, b.Field) })
			return err
		}
	}
	return decodeJSON(c, dst)
}

// sendCreated answers 201 with the new record, its Location under base and its ETag.
func sendCreated(c *fiber.Ctx, base string, rec models.Record) error {
	c.Location(base + "/" + rec.Header().ID)
	setETag(c, rec)
	return c.Status(fiber.StatusCreated).JSON(rec)
}

// recordTarget reads what a write to one record names: the :id and the If-Match version.
func recordTarget(c *fiber.Ctx) (id string, ifMatch int64, err error) {
	if id, err = pathID(c, "id"); err != nil {
		return "", 0, err
	}
	ifMatch, err = ifMatchVersion(c)
	return id, ifMatch, err
}

func patchRecord[R any](svc recordService[R]) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, ifMatch, err := recordTarget(c)
		if err != nil {
			return err
		}
		// Check the body's shape before loading anything.
		if err := decodeRecord(c, new(R)); err != nil {
			return err
		}
		out, err := svc.Update(c.UserContext(), actorOf(c), id, ifMatch, func(dst any) error { return decodeRecord(c, dst) })
		if err != nil {
			return err
		}
		setETag(c, &out)
		return c.JSON(out)
	}
}

func deleteRecord[R any](svc recordService[R]) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, ifMatch, err := recordTarget(c)
		if err != nil {
			return err
		}
		if err := svc.Delete(c.UserContext(), actorOf(c), id, ifMatch); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
}

// listRecords serves a list; parentParam, when set, names the path parameter
// holding the customer whose records are listed.
func listRecords[R any](svc recordService[R], parentParam string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		o, err := listOptions(c)
		if err != nil {
			return err
		}
		if parentParam != "" {
			id, err := pathID(c, parentParam)
			if err != nil {
				return err
			}
			o.Filters["customer_id"] = id
		}
		out, err := svc.List(c.UserContext(), actorOf(c), o)
		if err != nil {
			return err
		}
		return c.JSON(out)
	}
}

// listOptions reads ?limit=, ?after=, ?sort= and passes every other query
// parameter (each declared by the route: listParams) on as a filter.
func listOptions(c *fiber.Ctx) (crm.ListOptions, error) {
	limit, err := queryInt(c, "limit", defaultPageSize, 1, maxPageSize)
	if err != nil {
		return crm.ListOptions{}, err
	}
	o := filterOptions(c)
	o.Limit = limit
	return o, nil
}

// filterOptions reads what selects and orders a list without paging it
// (an export's): ?sort= and the filters, every other declared parameter.
func filterOptions(c *fiber.Ctx) crm.ListOptions {
	o := crm.ListOptions{Filters: map[string]string{}}
	for k, v := range queries(c) {
		switch k {
		case "limit":
		case "after":
			o.After = v
		case "sort":
			o.Sort = v
		default:
			o.Filters[k] = v
		}
	}
	return o
}

// ifMatchVersion reads If-Match: "3", 3 or W/"3"; absent or * means any
// version. Only a route that declares it (route.ifMatch, which the OpenAPI
// document shows) may: another reading it is a bug of the server, and panics
// as query does.
func ifMatchVersion(c *fiber.Ctx) (int64, error) {
	if declared, _ := c.Locals(localIfMatch).(bool); !declared {
		panic(fmt.Sprintf("the handler of %s %s reads If-Match, which its route does not declare", c.Method(), c.Route().Path))
	}
	raw := strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if raw == "" || raw == "*" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(raw, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		return 0, malformed(`If-Match must be the record's version as sent in its ETag, such as "3"`)
	}
	return v, nil
}

// setETag sends a record's version as its ETag; other values have none.
func setETag(c *fiber.Ctx, v any) {
	if rec, ok := v.(models.Record); ok {
		c.Set(fiber.HeaderETag, `"`+strconv.FormatInt(rec.Header().Version, 10)+`"`)
	}
}

// createCustomer serves POST /v1/customers: ?on_duplicate=flag creates a
// customer that matches others and flags it; the default refuses it with 409.
func (s *Server) createCustomer(c *fiber.Ctx) error {
	mode := cmp.Or(query(c, "on_duplicate"), "reject")
	if mode != "reject" && mode != "flag" {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "on_duplicate", Message: "must be reject or flag"}}}
	}
	var in models.Customer
	if err := decodeRecord(c, &in); err != nil {
		return err
	}
	out, err := s.crm.CreateCustomer(c.UserContext(), actorOf(c), in, mode == "flag")
	if err != nil {
		return err
	}
	return sendCreated(c, "/v1/customers", &out)
}

type assignRequest struct {
	OwnerID string `json:"owner_id"`
}

type mergeRequest struct {
	From []string `json:"from"`
}

type commentRequest struct {
	Body string `json:"body"`
}

// fieldRules of the action requests, for the OpenAPI document: each needs its field.
func (assignRequest) fieldRules() map[string]models.FieldRule {
	return map[string]models.FieldRule{"owner_id": {Required: true}}
}

func (mergeRequest) fieldRules() map[string]models.FieldRule {
	return map[string]models.FieldRule{"from": {Required: true}}
}

func (commentRequest) fieldRules() map[string]models.FieldRule {
	return map[string]models.FieldRule{"body": {Required: true}}
}

// withBody serves a POST /v1/<collection>/:id/<action> route whose body is In.
func withBody[In, Out any](act func(ctx context.Context, a models.Actor, id string, in In) (Out, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		var in In
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		out, err := act(c.UserContext(), actorOf(c), id, in)
		if err != nil {
			return err
		}
		setETag(c, &out)
		return c.JSON(out)
	}
}

func (s *Server) assign(ctx context.Context, a models.Actor, id string, in assignRequest) (models.Customer, error) {
	return s.crm.Assign(ctx, a, id, in.OwnerID)
}

func (s *Server) merge(ctx context.Context, a models.Actor, id string, in mergeRequest) (models.Customer, error) {
	return s.crm.Merge(ctx, a, id, in.From)
}

func (s *Server) comment(ctx context.Context, a models.Actor, id string, in commentRequest) (models.Ticket, error) {
	return s.crm.Comment(ctx, a, id, in.Body)
}

func (s *Server) duplicates(c *fiber.Ctx) error {
	o, err := listOptions(c)
	if err != nil {
		return err
	}
	out, err := s.crm.Duplicates(c.UserContext(), actorOf(c), o)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

type timelineResponse struct {
	Data []crm.TimelineItem `json:"data"`
}

func (s *Server) timeline(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	items, err := s.crm.Timeline(c.UserContext(), actorOf(c), id)
	if err != nil {
		return err
	}
	if items == nil {
		items = []crm.TimelineItem{}
	}
	return c.JSON(timelineResponse{Data: items})
}

func (s *Server) getSettings(c *fiber.Ctx) error {
	st, err := s.crm.Settings(c.UserContext(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(st)
}

func (s *Server) patchSettings(c *fiber.Ctx) error {
	var probe models.Settings
	if err := decodeJSON(c, &probe); err != nil {
		return err
	}
	st, err := s.crm.PatchSettings(c.UserContext(), actorOf(c), func(dst any) error { return decodeJSON(c, dst) })
	if err != nil {
		return err
	}
	return c.JSON(st)
}

type auditResponse struct {
	Data []auditEntry `json:"data"`
	// NextBefore is passed as ?before= for older entries; null at the end.
	NextBefore *time.Time `json:"next_before"`
}

func (s *Server) audit(c *fiber.Ctx) error {
	limit, err := queryInt(c, "limit", defaultPageSize, 1, maxPageSize)
	if err != nil {
		return err
	}
	var before *time.Time
	if raw := query(c, "before"); raw != "" {
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return &models.ValidationError{Fields: []models.FieldError{{Field: "before", Message: "must be a time such as 2026-01-05T09:00:00Z"}}}
		}
		before = &t
	}
	entries, err := s.crm.Audit(c.UserContext(), actorOf(c), query(c, "collection"), query(c, "record_id"), before, limit)
	if err != nil {
		return err
	}
	out := auditResponse{Data: make([]auditEntry, len(entries))}
	for i, e := range entries {
		out.Data[i] = auditEntryOf(e)
	}
	if len(entries) == limit {
		next := entries[len(entries)-1].At
		out.NextBefore = &next
	}
	return c.JSON(out)
}

type reclaimResponse struct {
	Returned int `json:"returned"`
}

// reclaimPool runs the pool reclaim of the admin's tenant now (it also runs on a schedule).
func (s *Server) reclaimPool(c *fiber.Ctx) error {
	a := actorOf(c)
	if a.Role != models.RoleAdmin {
		return &models.ForbiddenError{Reason: "only admins run the pool reclaim"}
	}
	n, err := s.crm.ReclaimIdle(c.UserContext(), a.TenantID)
	if err != nil {
		return err
	}
	return c.JSON(reclaimResponse{Returned: n})
}

// auditEntry is one entry of the audit log as GET /v1/audit shows it. It is
// the API's own type, so that what the store keeps in an entry (the tenant,
// fields added later) reaches clients only when the API says so.
type auditEntry struct {
	ID         string        `json:"id"`
	Collection string        `json:"collection"`
	RecordID   string        `json:"record_id"`
	Version    int64         `json:"version"`
	Action     string        `json:"action"`
	ActorID    string        `json:"actor_id"`
	At         time.Time     `json:"at"`
	Changes    []fieldChange `json:"changes"`
}

// fieldChange is one changed field of an auditEntry: its value before and
// after (null when it had none).
type fieldChange struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

func auditEntryOf(e models.AuditEntry) auditEntry {
	out := auditEntry{ID: e.ID, Collection: e.Collection, RecordID: e.RecordID, Version: e.Version,
		Action: e.Action, ActorID: e.ActorID, At: e.At}
	// A nil list stays null, as an entry without changes always showed it.
	if e.Changes != nil {
		out.Changes = make([]fieldChange, len(e.Changes))
		for i, c := range e.Changes {
			out.Changes[i] = fieldChange{Field: c.Field, Old: c.Old, New: c.New}
		}
	}
	return out
}
