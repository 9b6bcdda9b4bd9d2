package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

func (s *Server) syncSchema(c *fiber.Ctx) error {
	return c.JSON(s.sync.Schema())
}

// syncModels is a generated data layer: file names to TypeScript sources.
type syncModels struct {
	SchemaVersion int               `json:"schema_version"`
	Files         map[string]string `json:"files"`
}

// syncModels serves the files `fieldcrm schema --version N` writes, from the
// same generator, so that the package's CLI can fetch them from a running
// server instead of carrying a second generator.
func (s *Server) syncModels(c *fiber.Ctx) error {
	schema := s.sync.Schema()
	version, err := queryInt(c, "version", schema.Version, 1, schema.Version)
	if err != nil {
		return err
	}
	files, err := schema.Generate(version)
	if err != nil {
		return fmt.Errorf("generate the models of schema version %d: %w", version, err)
	}
	return c.JSON(syncModels{SchemaVersion: version, Files: files})
}

// syncPull serves WatermelonDB's pullChanges. last_pulled_at is null (or
// absent) on a first sync; schema_version is validated so a client learns at
// once that it speaks another schema; migration asks for the full records of
// the tables and columns the app's schema gained (see watermelon.Migration).
func (s *Server) syncPull(c *fiber.Ctx) error {
	v := &models.ValidationError{}
	var last int64
	switch raw := query(c, "last_pulled_at"); raw {
	case "", "null", "undefined":
	default:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			v.Add("last_pulled_at", "must be null or the timestamp of the previous pull")
		}
		last = n
	}
	if raw := query(c, "schema_version"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > watermelon.SchemaVersion {
			v.Add("schema_version", "must be from 1 to %d (see GET /v1/sync/schema)", watermelon.SchemaVersion)
		}
	}
	turbo, err := queryBool(c, "turbo")
	if bad := (*models.ValidationError)(nil); errors.As(err, &bad) {
		v.Fields = append(v.Fields, bad.Fields...)
	}
	whole := turbo != nil && *turbo
	var mig *watermelon.Migration
	if raw := query(c, "migration"); raw != "" && raw != "null" {
		mig = &watermelon.Migration{}
		if err := json.Unmarshal([]byte(raw), mig); err != nil {
			v.Add("migration", "must be null or WatermelonDB's migration object as JSON: {from, tables, columns}")
		} else if err := watermelon.CheckMigration(*mig); err != nil {
			return err
		}
	}
	if whole && (last != 0 || mig != nil) {
		v.Add("turbo", "is for a first sync only: last_pulled_at null and no migration")
	}
	if err := v.Err(); err != nil {
		return err
	}
	if whole {
		return s.syncWholeFirst(c)
	}
	start := time.Now()
	out, err := s.sync.Pull(c.UserContext(), deviceActorOf(c), last, mig)
	if err != nil {
		return err
	}
	s.syncm.pullDuration.Observe(time.Since(start).Seconds())
	records := 0
	for _, tc := range out.Changes {
		records += len(tc.Created) + len(tc.Updated) + len(tc.Deleted)
	}
	s.syncm.pullRecords.Observe(float64(records))
	body, err := out.AppendJSON(make([]byte, 0, 64<<10))
	if err != nil {
		return fmt.Errorf("encode a pull: %w", err)
	}
	s.syncm.pullBytes.Observe(float64(len(body)))
	c.Set("X-Sync-Has-More", strconv.FormatBool(out.HasMore))
	// For a client's progress bar: the records in this page, and the sync
	// number the round runs up to (see watermelon.PullResult.Until).
	c.Set("X-Sync-Records", strconv.Itoa(records))
	c.Set("X-Sync-Until", strconv.FormatInt(out.Until, 10))
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// wholeFirstSyncTimeout bounds how long one whole first sync may stream.
const wholeFirstSyncTimeout = 30 * time.Minute

// syncWholeFirst serves a first pull with turbo=true: every record the
// device may hold in one response, for WatermelonDB's Turbo Login (see
// watermelon.WholeFirstSync), streamed as it is read. How many records it
// holds is known only once sent, so it has no X-Sync-Records header.
func (s *Server) syncWholeFirst(c *fiber.Ctx) error {
	ctx := c.UserContext()
	a := deviceActorOf(c)
	first, err := s.sync.StartWholeFirstSync(ctx, a)
	if err != nil {
		return err
	}
	c.Set("X-Sync-Has-More", "false")
	c.Set("X-Sync-Until", strconv.FormatInt(first.Until(), 10))
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	log := s.log.With("tenant", a.TenantID, "user", a.UserID, "device", a.DeviceID)
	start := time.Now()
	var records int
	var body countingWriter
	streamBody(c, wholeFirstSyncTimeout, true, func(ctx context.Context, w io.Writer) (err error) {
		body.w = w
		records, err = first.Send(ctx, &body)
		return err
	}, func(ctx context.Context, err error) {
		// Not in the pull histograms, whose buckets are a page's: its time
		// is mostly the client's download, its records a whole territory.
		took := time.Since(start).Round(time.Millisecond).String()
		if err != nil {
			// Phones lose their connection: not the server's error.
			log.WarnContext(ctx, "whole first sync broke off", "records", records, "bytes", body.n, "took", took, "err", err.Error())
			return
		}
		log.InfoContext(ctx, "whole first sync sent", "records", records, "bytes", body.n, "took", took)
	})
	return nil
}

// syncPush serves WatermelonDB's pushChanges.
func (s *Server) syncPush(c *fiber.Ctx) error {
	last, err := strconv.ParseInt(query(c, "last_pulled_at"), 10, 64)
	if err != nil {
		return &models.ValidationError{Fields: []models.FieldError{{Field: "last_pulled_at", Message: "must be the timestamp of this device's last pull"}}}
	}
	var req watermelon.PushRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	start := time.Now()
	out, err := s.sync.Push(c.UserContext(), deviceActorOf(c), last, req)
	if err != nil {
		return err
	}
	s.syncm.pushDuration.Observe(time.Since(start).Seconds())
	records := 0
	for _, tc := range req.Changes {
		records += len(tc.Created) + len(tc.Updated) + len(tc.Deleted)
	}
	s.syncm.pushRecords.Observe(float64(records))
	s.syncm.pushBytes.Observe(float64(len(c.Body())))
	for table, ids := range out.Conflicted {
		if len(ids) > 0 {
			s.syncm.conflicts.WithLabelValues(table).Add(float64(len(ids)))
		}
	}
	for table, rejected := range out.Rejected {
		s.syncm.rejections.WithLabelValues(table).Add(float64(len(rejected)))
	}
	return c.JSON(out)
}

type resolveRequest struct {
	// Action is keep (the value the policy kept stays) or revert (the other
	// value is restored).
	Action string `json:"action"`
}

// fieldRules are the request's enumerations, for the OpenAPI document.
func (resolveRequest) fieldRules() map[string]models.FieldRule {
	return map[string]models.FieldRule{"action": {Enum: []string{crm.ResolveKeep, crm.ResolveRevert}, Required: true}}
}

func (s *Server) resolve(ctx context.Context, a models.Actor, id string, in resolveRequest) (models.Conflict, error) {
	return s.crm.ResolveConflict(ctx, a, id, in.Action)
}
