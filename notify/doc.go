// Package notify reminds people: follow-ups at their due time and before it,
// overdue escalations up the management line, ticket SLA warnings, daily
// digests for managers. MongoDB holds the truth (reminders, deliveries, device
// registry); Redis holds the schedule and the workers' claims (Schedule).
// The Scheduler keeps reminders in line with tasks and tickets on every
// change and rebuilds the schedule from MongoDB (Reconcile); Workers, one per
// process, send each firing once per device through FCM (or LogPusher) and
// into the recipient's inbox, honoring quiet hours.
package notify
