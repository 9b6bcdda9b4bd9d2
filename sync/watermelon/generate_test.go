package watermelon_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fieldcrm/fieldcrm/sync/watermelon"
)

// callArgs decodes the JSON argument of every call of fn in a generated
// file (the generator writes them as JSON, which TypeScript reads as object
// literals).
func callArgs(t *testing.T, src, fn string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for rest := src; ; {
		i := strings.Index(rest, fn+"(")
		if i < 0 {
			return out
		}
		rest = rest[i+len(fn)+1:]
		var arg map[string]any
		if err := json.NewDecoder(strings.NewReader(rest)).Decode(&arg); err != nil {
			t.Fatalf("%s(…) does not hold JSON: %v\n%.200s", fn, err, rest)
		}
		out = append(out, arg)
	}
}

func columnNames(spec map[string]any) []string {
	var names []string
	for _, c := range spec["columns"].([]any) {
		names = append(names, c.(map[string]any)["name"].(string))
	}
	return names
}

func TestGeneratedFilesHoldEveryVersionsTablesColumnsAndEnumerations(t *testing.T) {
	s := watermelon.CurrentSchema()
	if got, want := jsonOf(t, s), jsonOf(t, newFixture(t, 0).engine.Schema()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatal("CurrentSchema differs from the engine's schema")
	}
	for v := 1; v <= s.Version; v++ {
		at, _ := s.At(v)
		files, err := s.Generate(v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(files["schema.ts"], fmt.Sprintf("export const schemaVersion = %d\n", v)) {
			t.Errorf("v%d schema.ts: no schemaVersion %d", v, v)
		}
		tables := callArgs(t, files["schema.ts"], "tableSchema")
		if len(tables) != len(at.Tables) {
			t.Fatalf("v%d schema.ts has %d tables, want %d", v, len(tables), len(at.Tables))
		}
		for i, tb := range at.Tables {
			var want []string
			for _, c := range tb.Columns {
				want = append(want, c.Name)
			}
			if v >= 4 {
				want = append(want, "created_at", "updated_at") // WatermelonDB's own
			}
			if tables[i]["name"] != tb.Name || !slices.Equal(columnNames(tables[i]), want) {
				t.Errorf("v%d schema.ts table %d: %v %v; want %s %v", v, i, tables[i]["name"], columnNames(tables[i]), tb.Name, want)
			}
			if !strings.Contains(files["models.ts"], fmt.Sprintf("static table = '%s'\n", tb.Name)) {
				t.Errorf("v%d models.ts has no model of %s", v, tb.Name)
			}
			for _, c := range tb.Columns {
				if !strings.Contains(files["models.ts"], fmt.Sprintf("('%s'", c.Name)) {
					t.Errorf("v%d models.ts has no decorator of %s.%s", v, tb.Name, c.Name)
				}
				if len(c.Enum) == 0 {
					continue
				}
				// The enumeration is a union type of exactly its values.
				m := regexp.MustCompile(`(?m)^export type ` + enumName(tb.Name, c.Name) + ` = (.*)$`).FindStringSubmatch(files["types.ts"])
				if m == nil {
					t.Errorf("v%d types.ts has no union of %s.%s", v, tb.Name, c.Name)
					continue
				}
				var got []string
				for _, lit := range strings.Split(m[1], " | ") {
					got = append(got, strings.Trim(lit, "'"))
				}
				if !slices.Equal(got, c.Enum) {
					t.Errorf("v%d %s.%s union %v, want %v", v, tb.Name, c.Name, got, c.Enum)
				}
			}
		}

		// migrations.ts: one migration to each version after 1, newest first,
		// adding what MigrationFrom says.
		var toVersions []string
		for _, m := range regexp.MustCompile(`toVersion: (\d+)`).FindAllStringSubmatch(files["migrations.ts"], -1) {
			toVersions = append(toVersions, m[1])
		}
		var want []string
		for to := v; to > 1; to-- {
			want = append(want, fmt.Sprint(to))
		}
		if !slices.Equal(toVersions, want) {
			t.Errorf("v%d migrations to %v, want %v", v, toVersions, want)
		}
		if v == 1 {
			continue
		}
		created := callArgs(t, files["migrations.ts"], "createTable")
		added := map[string][]string{}
		for _, a := range callArgs(t, files["migrations.ts"], "addColumns") {
			added[a["table"].(string)] = append(added[a["table"].(string)], columnNames(a)...)
		}
		from1, _ := at.MigrationFrom(1)
		if len(created) != len(from1.Tables) || (len(created) > 0 && created[0]["name"] != from1.Tables[0]) {
			t.Errorf("v%d createTable %v, want %v", v, created, from1.Tables)
		}
		for _, mc := range from1.Columns {
			if !slices.Equal(sorted(added[mc.Table]...), sorted(mc.Columns...)) {
				t.Errorf("v%d addColumns to %s: %v, want %v", v, mc.Table, added[mc.Table], mc.Columns)
			}
		}
	}
}

func enumName(table, column string) string {
	cls := map[string]string{"customers": "Customer", "interactions": "Interaction", "tasks": "Task", "orders": "Order",
		"payments": "Payment", "tickets": "Ticket", "loyalty_entries": "LoyaltyEntry", "contacts": "Contact", "surveys": "Survey",
		"conflicts": "Conflict", "notifications": "Notification"}[table]
	var b strings.Builder
	for _, part := range strings.Split(column, "_") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return cls + b.String()
}
