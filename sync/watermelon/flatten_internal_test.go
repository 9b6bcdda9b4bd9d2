package watermelon

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/fieldcrm/fieldcrm/models"
)

// flattenByJSON is the definition flatten keeps to: a record's row is its
// JSON form, column by column.
func flattenByJSON(rec any, cols []Column) (map[string]any, error) {
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	row := map[string]any{}
	var id string
	_ = json.Unmarshal(fields["id"], &id)
	row["id"] = id
	for _, c := range cols {
		v, present := fields[c.jsonName]
		switch {
		case !present || string(v) == "null":
			row[c.Name] = emptyValue(c)
		case c.Time:
			var t time.Time
			if err := json.Unmarshal(v, &t); err != nil {
				return nil, err
			}
			row[c.Name] = t.UnixMilli()
		case c.JSON:
			row[c.Name] = string(v)
		default:
			var scalar any
			if err := json.Unmarshal(v, &scalar); err != nil {
				return nil, err
			}
			row[c.Name] = scalar
		}
	}
	return row, nil
}

// Every synced record type, filled at random (empty, missing and odd values
// included), flattens to what its JSON form says.
func TestFlattenIsTheJSONForm(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 26))
	for _, rec := range []any{&models.Customer{}, &models.Contact{}, &models.Interaction{}, &models.Task{}, &models.Order{},
		&models.Payment{}, &models.Ticket{}, &models.Survey{}, &models.LoyaltyEntry{}, &models.Conflict{}, &models.Notification{}} {
		cols := columnsOf(rec)
		typ := reflect.TypeOf(rec).Elem()
		for range 300 {
			v := reflect.New(typ)
			fillRandomly(r, v.Elem(), 0)
			got, err := flatten(v.Interface(), cols)
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			want, err := flattenByJSON(v.Interface(), cols)
			if err != nil {
				t.Fatalf("%s by JSON: %v", typ, err)
			}
			if !reflect.DeepEqual(got, want) {
				for k := range want {
					if !reflect.DeepEqual(got[k], want[k]) {
						t.Fatalf("%s column %s: %#v, its JSON form says %#v", typ, k, got[k], want[k])
					}
				}
				t.Fatalf("%s: %v, its JSON form says %v", typ, got, want)
			}
		}
	}
}

// fillRandomly sets v's exported fields to random values: zero, empty or
// nil a third of the time.
func fillRandomly(r *rand.Rand, v reflect.Value, depth int) {
	if !v.CanSet() || r.IntN(3) == 0 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString([]string{"", "x", "中文 <&> \"quoted\"", fmt.Sprint(r.Int64())}[r.IntN(4)])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(r.Int64N(100) - 50)
		if v.Kind() == reflect.Int64 || v.Kind() == reflect.Int {
			v.SetInt(r.Int64N(1<<53) - 1<<52)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(r.Uint64N(200))
	case reflect.Float64:
		v.SetFloat([]float64{0, 0.1, -3.75, 1e21, 123456.789, r.NormFloat64() * 1e6}[r.IntN(6)])
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillRandomly(r, v.Elem(), depth+1)
	case reflect.Slice:
		if depth > 3 {
			return
		}
		n := r.IntN(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fillRandomly(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || depth > 3 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range r.IntN(3) {
			e := reflect.New(v.Type().Elem()).Elem()
			fillRandomly(r, e, depth+1)
			m.SetMapIndex(reflect.ValueOf(fmt.Sprint(r.IntN(9))).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			zone := []*time.Location{time.UTC, time.FixedZone("CST", 8*3600)}[r.IntN(2)]
			v.Set(reflect.ValueOf(time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(zone)))
			return
		}
		for i := range v.NumField() {
			fillRandomly(r, v.Field(i), depth+1)
		}
	}
}
