package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzParseSize: a configured size is a non-negative byte count or an
// error, never a wrapped-around number.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"16777216TiB", "8388607TiB", "512MiB", "20GB", "1T", "0", "  7 K ", "99999999999999999999", "-1GiB", "1.5GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw, _ := json.Marshal(s)
		n, err := parseSize(raw)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("%q parsed as %d", s, n)
		}
		m := sizePattern.FindStringSubmatch(s)
		unit := strings.TrimSuffix(strings.TrimSuffix(m[2], "B"), "i")
		mult := map[string]int64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
		if n%mult != 0 {
			t.Fatalf("%q parsed as %d, not a multiple of %d", s, n, mult)
		}
	})
}

// FuzzDuration: a configured duration is non-negative or an error.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{`"30s"`, `"1h30m"`, `"-5m"`, `"9999999999h"`, `30`, `"5"`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d duration
		if d.UnmarshalJSON(b) == nil && time.Duration(d) < 0 {
			t.Fatalf("%s parsed as %s", b, time.Duration(d))
		}
	})
}
