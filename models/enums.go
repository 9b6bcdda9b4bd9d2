package models

import "reflect"

// The enumerations Prepare and Validate check against that had no name before.
var (
	// CustomerKinds are a customer's kinds: a company, or a person buying alone.
	CustomerKinds = []string{KindCompany, KindPerson}
	// TaskStatuses are a follow-up task's statuses.
	TaskStatuses = []string{TaskOpen, TaskDone, TaskCancelled}
	// TicketStatuses are a service ticket's statuses, in workflow order.
	TicketStatuses = []string{TicketNew, TicketAssigned, TicketInProgress, TicketResolved, TicketClosed}
	// PointsKinds are the kinds of a loyalty ledger entry.
	PointsKinds = []string{PointsEarn, PointsRedeem, PointsAdjust, PointsExpire}
	// RoleNames are the roles a user can have, most powerful first.
	RoleNames = []string{string(RoleAdmin), string(RoleManager), string(RoleRep)}
	// Platforms are the platforms a device registers for pushes from.
	Platforms = []string{PlatformAndroid, PlatformIOS, PlatformWeb}
)

// FieldRule is what a model accepts in one of its fields beyond its Go type.
type FieldRule struct {
	// Enum lists the values the field accepts, when it accepts a fixed set;
	// "" among them means the field may be left empty.
	Enum []string
	// Required means a write without the field (or with it empty) is refused.
	// A field the server fills when it is missing (a customer's stage) is not
	// required.
	Required bool
}

// FieldRules returns the rules of the fields of a model type (Customer,
// Interaction, Task…), keyed by JSON name (a nested field as "check_in.lat"),
// for the documents clients build from: the sync schema and the OpenAPI
// document. They are the lists Prepare and Validate check against, so a
// schema cannot list a value the server refuses. A type with no rules gives nil.
func FieldRules(t reflect.Type) map[string]FieldRule {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	enum := func(values []string) FieldRule { return FieldRule{Enum: values} }
	required := FieldRule{Required: true}
	switch t {
	case reflect.TypeFor[Signup]():
		return map[string]FieldRule{"company_name": required, "name": required, "email": required, "password": required}
	case reflect.TypeFor[Login]():
		return map[string]FieldRule{"email": required, "password": required}
	case reflect.TypeFor[NewTeam]():
		return map[string]FieldRule{"name": required}
	case reflect.TypeFor[Customer](), reflect.TypeFor[CustomerFields]():
		return map[string]FieldRule{
			"name":          required,
			"kind":          enum(CustomerKinds),
			"gender":        enum(Genders),
			"customer_type": enum(CustomerTypes),
			"source":        enum(append([]string{""}, SourceChannels...)),
			"need_type":     enum(append([]string{""}, NeedTypes...)),
			"value_tier":    enum(ValueTiers),
			"stage":         enum(Stages),
		}
	case reflect.TypeFor[Social]():
		return map[string]FieldRule{"network": {Enum: SocialNetworks, Required: true}, "handle": required}
	case reflect.TypeFor[Contact]():
		return map[string]FieldRule{"customer_id": required, "name": required}
	case reflect.TypeFor[Interaction]():
		return map[string]FieldRule{"customer_id": required, "channel": {Enum: Channels, Required: true}}
	case reflect.TypeFor[Survey]():
		return map[string]FieldRule{"customer_id": required}
	case reflect.TypeFor[Task]():
		return map[string]FieldRule{"customer_id": required, "title": required, "due_at": required, "status": enum(TaskStatuses)}
	case reflect.TypeFor[LoyaltyEntry]():
		return map[string]FieldRule{"customer_id": required, "kind": {Enum: PointsKinds, Required: true}, "points": required, "reason": required}
	case reflect.TypeFor[Order]():
		return map[string]FieldRule{"customer_id": required, "status": enum(OrderStatuses)}
	case reflect.TypeFor[Payment]():
		// The server takes customer_id from the order.
		return map[string]FieldRule{"order_id": required, "amount": required, "method": {Enum: PaymentMethods, Required: true}}
	case reflect.TypeFor[Ticket]():
		return map[string]FieldRule{"customer_id": required, "title": required, "type": {Enum: TicketTypes, Required: true},
			"priority": enum(TicketPriorities), "status": enum(TicketStatuses)}
	case reflect.TypeFor[Device]():
		return map[string]FieldRule{"device_id": required, "fcm_token": required, "platform": {Enum: Platforms, Required: true}}
	case reflect.TypeFor[NewUser]():
		return map[string]FieldRule{"name": required, "email": required, "role": {Enum: RoleNames, Required: true}}
	case reflect.TypeFor[User]():
		return map[string]FieldRule{"role": enum(RoleNames)}
	}
	return nil
}
