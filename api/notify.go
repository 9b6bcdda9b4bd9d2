package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldcrm/fieldcrm/models"
)

// notifyService is what the API needs of reminders and push (notify.Service).
type notifyService interface {
	RegisterDevice(ctx context.Context, a models.Actor, d models.Device) (models.Device, error)
	UnregisterDevice(ctx context.Context, a models.Actor, deviceID string) error
	Devices(ctx context.Context, a models.Actor) ([]models.Device, error)
	TaskReminders(ctx context.Context, a models.Actor, taskID string) ([]models.Reminder, error)
}

func (s *Server) registerDevice(c *fiber.Ctx) error {
	var d models.Device
	if err := decodeJSON(c, &d); err != nil {
		return err
	}
	out, err := s.notify.RegisterDevice(c.UserContext(), actorOf(c), d)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *Server) listDevices(c *fiber.Ctx) error {
	out, err := s.notify.Devices(c.UserContext(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(map[string]any{"data": out})
}

func (s *Server) unregisterDevice(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.notify.UnregisterDevice(c.UserContext(), actorOf(c), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) taskReminders(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	out, err := s.notify.TaskReminders(c.UserContext(), actorOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(map[string]any{"data": out})
}

type devicesResponse struct {
	Data []models.Device `json:"data"`
}

type remindersResponse struct {
	Data []models.Reminder `json:"data"`
}
