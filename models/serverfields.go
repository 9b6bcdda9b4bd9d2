package models

// metaFields are the JSON names of Meta: the server writes them on every record.
var metaFields = []string{"id", "owner_id", "team_id", "version", "created_at", "created_by", "updated_at", "updated_by", "deleted_at"}

// ServerFields lists the JSON fields of a record that only the server writes;
// a request that sends one is refused rather than silently ignored.
func ServerFields(rec any) []string {
	var own []string
	switch rec.(type) {
	case *Customer:
		own = []string{"number", "external_ref", "stage_history", "owner_history", "assigned_at", "duplicate", "merged_into",
			"last_interaction_at", "balance", "credit", "loyalty"}
	case *Task:
		own = []string{"completed_at", "interaction_id"}
	case *Order:
		own = []string{"amount"}
	case *Payment:
		own = []string{"customer_id", "currency"}
	case *Ticket:
		own = []string{"sla_due_at", "resolved_at", "closed_at", "comments", "status_history"}
	case *LoyaltyEntry:
		own = []string{"balance_after"}
	case *Conflict:
		// Conflicts are the server's record of what it decided; they are
		// settled through POST /v1/conflicts/{id}/resolve, never written.
		own = []string{"table", "record_id", "column", "server_value", "server_by", "server_at", "device_value",
			"device_by", "device_id", "policy", "kept", "resolution", "resolved_by", "resolved_at"}
	case *Notification:
		own = []string{"user_id", "kind", "title", "body", "task_id", "customer_id", "ticket_id", "collapse_key"}
	}
	return append(own, metaFields...)
}
