package notify

import (
	"context"
	"errors"

	"github.com/fieldcrm/fieldcrm/models"
)

// taskVisibility tells whether the actor may see a task (crm's Tasks).
type taskVisibility interface {
	Get(ctx context.Context, a models.Actor, id string) (models.Task, error)
}

// Service is what the API asks of reminders and push: the signed-in user's
// devices, and the state of a task's reminders.
type Service struct {
	devices *Devices
	store   reminderStore
	tasks   taskVisibility
}

// NewService returns the API's side of notify.
func NewService(devices *Devices, st reminderStore, tasks taskVisibility) *Service {
	return &Service{devices: devices, store: st, tasks: tasks}
}

// RegisterDevice registers or refreshes a device of the actor.
func (s *Service) RegisterDevice(ctx context.Context, a models.Actor, d models.Device) (models.Device, error) {
	return s.devices.Register(ctx, a, d)
}

// UnregisterDevice removes a device of the actor.
func (s *Service) UnregisterDevice(ctx context.Context, a models.Actor, deviceID string) error {
	return s.devices.Unregister(ctx, a, deviceID)
}

// Devices lists the actor's devices.
func (s *Service) Devices(ctx context.Context, a models.Actor) ([]models.Device, error) {
	return s.devices.List(ctx, a.TenantID, a.UserID)
}

// TaskReminders returns the reminders of a task the actor may see: when each
// fires and what became of it (scheduled, sent, cancelled, failed).
func (s *Service) TaskReminders(ctx context.Context, a models.Actor, taskID string) ([]models.Reminder, error) {
	if _, err := s.tasks.Get(ctx, a, taskID); err != nil {
		return nil, err
	}
	out := []models.Reminder{}
	for _, kind := range models.TaskReminderKinds {
		r, err := s.store.Reminder(ctx, models.ReminderID(a.TenantID, taskID, kind))
		if errors.Is(err, models.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
