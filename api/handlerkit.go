package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/models"
)

// actorCall is a service method that acts for the signed-in user on an input:
// an id, or a decoded body.
type actorCall[In, Out any] func(ctx context.Context, a models.Actor, in In) (Out, error)

// createOne serves POST of a new record: decode the body (refusing the
// server's fields of a CRM record), create it as the actor, answer 201 with
// its Location under collection and, for a CRM record, its ETag.
func createOne[In, Out any](collection string, create actorCall[In, Out], idOf func(Out) string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in In
		if err := decodeRecord(c, &in); err != nil {
			return err
		}
		out, err := create(c.UserContext(), actorOf(c), in)
		if err != nil {
			return err
		}
		c.Location(collection + "/" + idOf(out))
		setETag(c, &out)
		return c.Status(fiber.StatusCreated).JSON(out)
	}
}

// readOne serves GET of one record by the :id path parameter (and the POST
// actions on one record that take no body, such as claim); the service answers
// models.ErrNotFound for what the actor may not see. A CRM record's version
// goes out as its ETag.
func readOne[Out any](get actorCall[string, Out]) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		out, err := get(c.UserContext(), actorOf(c), id)
		if err != nil {
			return err
		}
		setETag(c, &out)
		return c.JSON(out)
	}
}

// page is the envelope of every list: the items and the cursor of the next page.
type page[T any] struct {
	Data []T `json:"data"`
	// NextAfter is passed as ?after= to get the next page; null on the last page.
	NextAfter *string `json:"next_after"`
}

// Page sizes of list endpoints.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)
