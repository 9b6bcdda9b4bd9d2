package watermelon

import (
	"fmt"
	"slices"
)

// SchemaChange is what one schema version changed from the version before.
// Versions only ever add (WatermelonDB's migrations can add tables and
// columns, never drop or rename them), so an app at any earlier version
// reaches the current one by adding what the changes after it list.
type SchemaChange struct {
	Version int
	// Tables were added whole.
	Tables []string
	// Columns were added to tables that existed before.
	Columns []MigrationColumns
	// EveryTable are columns added to every table that existed before.
	// Replacing names, for each of them, the column that carried the same
	// value at the versions before, which stops coming from the server and
	// stays on the device for the app's own use.
	EveryTable []string
	Replacing  map[string]string
}

// History lists the schema's changes, oldest first, from version 1 (which had
// every table but notifications, and every column but those added since).
func History() []SchemaChange {
	return []SchemaChange{
		{Version: 2, Tables: []string{"notifications"}},
		{Version: 3, Columns: []MigrationColumns{{Table: "customers", Columns: []string{"external_ref"}}}},
		{Version: 4, EveryTable: []string{"server_created_at", "server_updated_at"},
			Replacing: map[string]string{"server_created_at": "created_at", "server_updated_at": "updated_at"}},
	}
}

// At returns the schema as it was at an earlier version: what an app built
// for that version has on the device (and generates its models from).
func (s Schema) At(version int) (Schema, error) {
	if version < 1 || version > s.Version {
		return Schema{}, fmt.Errorf("schema version %d: must be from 1 to %d", version, s.Version)
	}
	at := Schema{Version: version}
	for _, t := range s.Tables {
		at.Tables = append(at.Tables, Table{Name: t.Name, Columns: slices.Clone(t.Columns)})
	}
	history := History()
	for i := len(history) - 1; i >= 0 && history[i].Version > version; i-- {
		c := history[i]
		at.Tables = slices.DeleteFunc(at.Tables, func(t Table) bool { return slices.Contains(c.Tables, t.Name) })
		for ti := range at.Tables {
			t := &at.Tables[ti]
			var added []string
			for _, mc := range c.Columns {
				if mc.Table == t.Name {
					added = append(added, mc.Columns...)
				}
			}
			t.Columns = slices.DeleteFunc(t.Columns, func(col Column) bool { return slices.Contains(added, col.Name) })
			for ci := range t.Columns {
				if slices.Contains(c.EveryTable, t.Columns[ci].Name) {
					if before, ok := c.Replacing[t.Columns[ci].Name]; ok {
						t.Columns[ci].Name = before
					} else {
						t.Columns[ci].Name = "" // dropped below
					}
				}
			}
			t.Columns = slices.DeleteFunc(t.Columns, func(col Column) bool { return col.Name == "" })
		}
	}
	return at, nil
}

// MigrationFrom returns the migration an app at version from sends on its
// first pull at this schema's version (WatermelonDB's migration sync): the
// tables and the columns the versions since then added.
func (s Schema) MigrationFrom(from int) (Migration, error) {
	if from >= s.Version {
		return Migration{}, fmt.Errorf("schema version %d: an app migrates from a version below %d", from, s.Version)
	}
	before, err := s.At(from)
	if err != nil {
		return Migration{}, err
	}
	return diff(before, s), nil
}

// diff lists what to add to schema a to make schema b.
func diff(a, b Schema) Migration {
	m := Migration{From: a.Version, Tables: []string{}, Columns: []MigrationColumns{}}
	for _, t := range b.Tables {
		i := slices.IndexFunc(a.Tables, func(o Table) bool { return o.Name == t.Name })
		if i < 0 {
			m.Tables = append(m.Tables, t.Name)
			continue
		}
		var added []string
		for _, c := range t.Columns {
			if !slices.ContainsFunc(a.Tables[i].Columns, func(o Column) bool { return o.Name == c.Name }) {
				added = append(added, c.Name)
			}
		}
		if len(added) > 0 {
			m.Columns = append(m.Columns, MigrationColumns{Table: t.Name, Columns: added})
		}
	}
	return m
}
