package notary

import (
	"strings"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	id := strings.Repeat("ab", 32)
	ok := Config{Name: "n", URL: "https://notary.example", StateDir: "/tmp/x", Pins: []Pin{{GUN: "r.example/**", RootKeyIDs: []string{id}}}}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no URL", func(c *Config) { c.URL = "" }, "URL"},
		{"not http", func(c *Config) { c.URL = "ftp://x" }, "URL"},
		{"no state", func(c *Config) { c.StateDir = "" }, "StateDir"},
		{"no pins", func(c *Config) { c.Pins = nil }, "never established on first use"},
		{"pin pins nothing", func(c *Config) { c.Pins[0].RootKeyIDs = nil }, "pins nothing"},
		{"bad key ID", func(c *Config) { c.Pins[0].RootKeyIDs = []string{"abc"} }, "not a key ID"},
		{"bad pattern", func(c *Config) { c.Pins[0].GUN = "r/**/x" }, "** is only allowed as the last segment"},
		{"bad content", func(c *Config) { c.Pins[0].Content = "thick" }, "Content"},
		{"bad cert", func(c *Config) { c.Pins[0].RootCerts = [][]byte{[]byte("nope")} }, "RootCerts[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Pins = []Pin{ok.Pins[0]}
			tc.edit(&c)
			if _, err := Open(c, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := Open(ok, Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestPinForMostSpecific(t *testing.T) {
	id := strings.Repeat("ab", 32)
	r, err := Config{Name: "n", URL: "http://n", StateDir: "/x", Pins: []Pin{
		{GUN: "r.example/**", RootKeyIDs: []string{id}},
		{GUN: "r.example/acme/app", RootKeyIDs: []string{id}, Content: ContentBundle},
		{GUN: "r.example/acme/*", RootKeyIDs: []string{id}},
	}}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	for gun, want := range map[string]string{
		"r.example/acme/app":   "r.example/acme/app",
		"r.example/acme/web":   "r.example/acme/*",
		"r.example/a/b/c":      "r.example/**",
		"other.example/acme/x": "",
	} {
		p, ok := r.pinFor(gun)
		if got := map[bool]string{true: p.GUN, false: ""}[ok]; got != want {
			t.Errorf("pinFor(%s) = %q, want %q", gun, got, want)
		}
	}
}
