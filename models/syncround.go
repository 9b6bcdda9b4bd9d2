package models

// SyncRound is what the server keeps of one pull a device made (see package
// sync/cursor): the push that follows it, and the next page of a round
// still paging, depend on where the device stood before the round, which
// the cursor the device sends back does not say. It is kept in the
// database, not in Redis alone: a restart between a pull and its push
// would otherwise judge that push as if the device had seen every change
// it pulled, and overwrite a concurrent edit without a conflict.
type SyncRound struct {
	// To is the cursor the pull answered, the one the device sends next.
	To int64 `bson:"to"`
	// Base is where the device stood before the round: a push sent with To
	// is judged from it.
	Base int64 `bson:"base"`
	// More says the round is still paging; Start is then where it began
	// (0: a first sync) and NewTables the tables a migration pull brings
	// whole on every page of it.
	More      bool     `bson:"more"`
	Start     int64    `bson:"start"`
	NewTables []string `bson:"new_tables,omitempty"`
}
