// Package notify will hold reminder scheduling on Redis, the delivery workers,
// the FCM sender, the in-app inbox, escalation and digests (issue #5). It is
// empty today; the folder exists so that the dependency order
// cmd → api → notify → sync → models is visible from the start.
package notify
