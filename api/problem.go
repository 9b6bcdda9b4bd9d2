package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/internal/accounts"
	"github.com/fieldcrm/fieldcrm/models"
)

// Problem is an RFC 9457 problem document, the body of every error response.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Instance  string              `json:"instance,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
	Errors    []models.FieldError `json:"errors,omitempty"`
	// Duplicates lists the existing customers a new one matches (409).
	Duplicates []models.DuplicateCandidate `json:"duplicates,omitempty"`
}

// problemTypes are the stable identifiers clients can switch on;
// docs/api.md lists them. They are relative URIs, resolved against the API's own address.
const (
	typeValidation   = "/problems/validation"
	typeMalformed    = "/problems/malformed-request"
	typeUnsupported  = "/problems/unsupported-media-type"
	typeUnauthorized = "/problems/unauthenticated"
	typeTokenExpired = "/problems/token-expired"
	typeSessionEnded = "/problems/session-revoked"
	typeForbidden    = "/problems/forbidden"
	typeSignupClosed = "/problems/signup-closed"
	typeNotFound     = "/problems/not-found"
	typeConflict     = "/problems/conflict"
	typeDuplicate    = "/problems/duplicate-customer"
	typeStale        = "/problems/stale-version"
	typeResync       = "/problems/resync-required"
	typeTooLarge     = "/problems/body-too-large"
	typeRateLimited  = "/problems/rate-limited"
	typeMethod       = "/problems/method-not-allowed"
	typeInternal     = "/problems/internal"
	typeUnavailable  = "/problems/unavailable"
)

// problemError is an error that already knows its problem document; handlers
// return it for request-shape errors found before any service is called.
type problemError struct{ p Problem }

func (e *problemError) Error() string { return e.p.Title + ": " + e.p.Detail }

func newProblem(status int, typ, title, detail string) *problemError {
	return &problemError{Problem{Type: typ, Title: title, Status: status, Detail: detail}}
}

func malformed(detail string) *problemError {
	return newProblem(fiber.StatusBadRequest, typeMalformed, "Malformed request", detail)
}

// problemFor maps any error to its problem document. This is the one place where
// domain errors become HTTP statuses.
func problemFor(err error) Problem {
	var (
		pe  *problemError
		ve  *models.ValidationError
		rl  *models.RateLimitedError
		fe  *models.ForbiddenError
		fbe *fiber.Error
		ae  *accounts.AuthError
		de  *models.DuplicateError
		ue  *models.UnavailableError
	)
	switch {
	case errors.As(err, &pe):
		return pe.p
	case errors.As(err, &de):
		return Problem{Type: typeDuplicate, Title: "Possible duplicate", Status: fiber.StatusConflict,
			Detail:     "the customer matches existing ones (see duplicates); open one of them, or send again with ?on_duplicate=flag to create it flagged",
			Duplicates: de.Candidates}
	case errors.Is(err, models.ErrResyncRequired):
		return Problem{Type: typeResync, Title: "Full resync required", Status: fiber.StatusGone,
			Detail: "this device's sync cursor is not valid on this server: older than the oldest deletion it keeps, from before the database was restored, or from another server. Push the local changes with the same cursor (they are applied, every difference kept as a conflict), then reset the local database and pull from last_pulled_at=null"}
	case errors.Is(err, models.ErrStale):
		return Problem{Type: typeStale, Title: "Stale version", Status: fiber.StatusPreconditionFailed,
			Detail: err.Error() + "; read the record again, reapply your change and send it with the new version"}
	case errors.Is(err, models.ErrConflict):
		p := Problem{Type: typeConflict, Title: "Conflict", Status: fiber.StatusConflict, Detail: "the request conflicts with an existing record"}
		if errors.As(err, &ve) {
			p.Errors = ve.Fields
			p.Detail = ve.Error()
		}
		return p
	case errors.As(err, &ve):
		return Problem{Type: typeValidation, Title: "Invalid input", Status: fiber.StatusUnprocessableEntity,
			Detail: "fix the fields listed in errors and send again", Errors: ve.Fields}
	case errors.As(err, &rl):
		return Problem{Type: typeRateLimited, Title: "Too many attempts", Status: fiber.StatusTooManyRequests,
			Detail: "wait " + strconv.Itoa(rl.RetryAfterSeconds) + " seconds (Retry-After) before trying again"}
	case errors.As(err, &ue):
		return Problem{Type: typeUnavailable, Title: "Unavailable for a moment", Status: fiber.StatusServiceUnavailable,
			Detail: ue.Reason + "; nothing of this request was applied: send it again after " + strconv.Itoa(ue.RetryAfterSeconds) + " seconds (Retry-After)"}
	case errors.Is(err, models.ErrUnauthenticated):
		// Three types, one status: a client refreshes on token-expired, signs
		// the user out on session-revoked, and fixes what it sends otherwise.
		p := Problem{Type: typeUnauthorized, Title: "Unauthenticated", Status: fiber.StatusUnauthorized,
			Detail: "send a valid access token: Authorization: Bearer <token>"}
		if errors.As(err, &ae) {
			p.Detail = ae.Reason
			switch ae.Kind {
			case accounts.TokenExpired:
				p.Type, p.Title = typeTokenExpired, "Access token expired"
			case accounts.SessionEnded:
				p.Type, p.Title = typeSessionEnded, "Session ended"
			}
		}
		return p
	case errors.Is(err, models.ErrForbidden):
		detail := "your role does not allow this"
		if errors.As(err, &fe) {
			detail = fe.Reason
		}
		return Problem{Type: typeForbidden, Title: "Forbidden", Status: fiber.StatusForbidden, Detail: detail}
	case errors.Is(err, models.ErrNotFound):
		return Problem{Type: typeNotFound, Title: "Not found", Status: fiber.StatusNotFound, Detail: "no such record"}
	case errors.As(err, &fbe):
		return fiberProblem(fbe)
	default:
		return Problem{Type: typeInternal, Title: "Internal error", Status: fiber.StatusInternalServerError,
			Detail: "something went wrong on the server; quote the request_id when reporting it"}
	}
}

func (p Problem) withRequest(c *fiber.Ctx) Problem {
	p.RequestID = requestID(c)
	p.Instance = c.Path()
	return p
}

func fiberProblem(e *fiber.Error) Problem {
	switch e.Code {
	case fiber.StatusNotFound:
		return Problem{Type: typeNotFound, Title: "Not found", Status: e.Code, Detail: "no such route"}
	case fiber.StatusMethodNotAllowed:
		return Problem{Type: typeMethod, Title: "Method not allowed", Status: e.Code, Detail: e.Message}
	case fiber.StatusRequestEntityTooLarge:
		return Problem{Type: typeTooLarge, Title: "Request body too large", Status: e.Code, Detail: "the body exceeds the server's limit (see the README)"}
	case fiber.StatusUnsupportedMediaType:
		return Problem{Type: typeUnsupported, Title: "Unsupported media type", Status: e.Code, Detail: e.Message}
	}
	if e.Code >= 400 && e.Code < 500 {
		return Problem{Type: typeMalformed, Title: "Bad request", Status: e.Code, Detail: e.Message}
	}
	return Problem{Type: typeInternal, Title: "Internal error", Status: fiber.StatusInternalServerError, Detail: "something went wrong on the server"}
}

// errorHandler renders every error returned by a handler or middleware.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	p := problemFor(err).withRequest(c)
	var (
		rl *models.RateLimitedError
		ue *models.UnavailableError
	)
	if errors.As(err, &rl) {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(rl.RetryAfterSeconds))
	}
	if errors.As(err, &ue) {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(ue.RetryAfterSeconds))
	}
	if p.Status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="fieldcrm"`)
	}
	if p.Status >= 500 {
		s.log.ErrorContext(c.UserContext(), "request failed", "err", err.Error(), "path", c.Path())
	}
	c.Status(p.Status)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	body, mErr := json.Marshal(p)
	if mErr != nil {
		slog.ErrorContext(c.UserContext(), "encode problem", "err", mErr)
		return c.SendString(`{"type":"/problems/internal","title":"Internal error","status":500}`)
	}
	return c.Send(body)
}
