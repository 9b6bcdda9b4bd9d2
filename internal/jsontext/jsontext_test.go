package jsontext

import (
	"encoding/json"
	"math"
	"testing"
)

func TestStringsAreWrittenAsEncodingJSONDoes(t *testing.T) {
	for _, s := range []string{"", "plain id-42_x", "张伟 Zhāng", "a\"b", `back\slash`, "<b>&amp;", "tab\there\n",
		"\x00\x1f", "\b\f\r\x7f", "line\u2028sep\u2029", "bad \xff utf-8", "cut \xe4\xb8", "replacement \ufffd char", "emoji 😀", `[{"number":"+86"}]`} {
		got := AppendString([]byte("x"), s)
		want, _ := json.Marshal(s)
		if string(got) != "x"+string(want) {
			t.Fatalf("%q written as %s, encoding/json writes %s", s, got[1:], want)
		}
	}
}

func TestNumbersAreWrittenAsEncodingJSONDoes(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.5e-7, 1e-6, 9.99e-7, 123456789, 1e20, 1e21, -1e21, 1.7976931348623157e308,
		5e-324, 1e-10, 3.14159, 1767225600000, float64(1<<53 + 1), -2.5e-9} {
		got, err := AppendFloat(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(f)
		if string(got) != string(want) {
			t.Fatalf("%v written as %s, encoding/json writes %s", f, got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := AppendFloat(nil, f); err == nil {
			t.Fatalf("%v was written", f)
		}
	}
}

func TestValuesAreWrittenAsEncodingJSONDoes(t *testing.T) {
	for _, v := range []any{nil, "华东", true, false, 2.5, 0, -7, int64(1767225600000), []string{"a"}, map[string]any{"b": 1, "a": "<"}} {
		got, err := AppendValue(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(v)
		if string(got) != string(want) {
			t.Fatalf("%#v written as %s, encoding/json writes %s", v, got, want)
		}
	}
	if _, err := AppendValue(nil, func() {}); err == nil {
		t.Fatal("a function was written")
	}
}

func FuzzAppendMatchesEncodingJSON(f *testing.F) {
	f.Add("华东 <b>", 1.5e-7, int64(-3))
	f.Add("\xff\u2028", 1e21, int64(1)<<62)
	f.Fuzz(func(t *testing.T, s string, x float64, n int64) {
		for _, v := range []any{s, x, n} {
			want, wantErr := json.Marshal(v)
			got, err := AppendValue(nil, v)
			if (err != nil) != (wantErr != nil) || (err == nil && string(got) != string(want)) {
				t.Fatalf("%#v written as %s (%v), encoding/json writes %s (%v)", v, got, err, want, wantErr)
			}
		}
	})
}
