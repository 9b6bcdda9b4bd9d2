package watermelon

import (
	"fmt"
	"strings"
	"testing"
)

// TestLateRecordsAreNotSentTwice: a record changed between a round's query
// and its query of late records is found by both; the response names it once.
func TestLateRecordsAreNotSentTwice(t *testing.T) {
	all := []change{{table: "customers", id: "a", seq: 5}, {table: "tasks", id: "b", seq: 6}}
	late := []change{{table: "customers", id: "a", seq: 9}, {table: "customers", id: "b", seq: 10}}
	got := withLate(all, late)
	var names []string
	for _, c := range got {
		names = append(names, fmt.Sprintf("%s/%s@%d", c.table, c.id, c.seq))
	}
	if want := "customers/a@5 tasks/b@6 customers/b@10"; strings.Join(names, " ") != want {
		t.Fatalf("got %v, want %s", names, want)
	}
}
