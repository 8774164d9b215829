package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigValues checks what a configuration file parses to, not only that
// it parses.
func TestConfigValues(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600)
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(`
listen: 0.0.0.0:5443
log: {level: debug, format: console}
storage:
  filesystem: {rootdirectory: cache}
  maxsize: 20GiB
  spooldir: spool
  manifestmemory: 16MiB
state: state
upstreams:
  - name: docker.io
    url: https://registry-1.docker.io
    default: true
    auth: {username: bob, passwordFile: pw}
    timeout: 1m30s
    retries: 0
    maxRedirects: 5
    maxBlobBytes: 2GiB
    blobTimeout: 30m
    minBytesPerSecond: 4096
  - {name: ghcr.io, url: "https://ghcr.io"}
trust:
  corp: {metadata: "https://tuf.example/metadata", root: root.json, refresh: 5m, maxMetadataBytes: 1048576}
policy:
  default: deny
  rules:
    - {name: acme, match: "ghcr.io/acme/**", mode: enforce, trust: corp, require: [tuf, in-toto],
       inToto: {limits: {maxSteps: 300, maxLinks: 2000, maxMetadataBytes: 8388608}}}
`), 0o644)
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	up := c.Upstreams[0]
	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"listen", c.Listen, "0.0.0.0:5443"},
		{"log.level", c.Log.Level, "debug"},
		{"storage driver", c.Storage.Driver, "filesystem"},
		{"storage.maxsize", c.Storage.MaxSize, int64(21474836480)},
		{"rootdirectory (relative to the file)", c.Storage.Parameters["rootdirectory"], filepath.Join(dir, "cache")},
		{"spooldir", c.Storage.SpoolDir, filepath.Join(dir, "spool")},
		{"storage.manifestmemory", *c.Storage.ManifestMemory, int64(16 << 20)},
		{"storage.manifestmemory as the cache's budget", c.Storage.cacheManifestMemory(), int64(16 << 20)},
		{"storage.manifestmemory unset: the cache's default", (&storageConfig{}).cacheManifestMemory(), int64(0)},
		{"storage.manifestmemory 0: none", (&storageConfig{ManifestMemory: new(int64)}).cacheManifestMemory(), int64(-1)},
		{"state", c.State, filepath.Join(dir, "state")},
		{"upstreams[0].default", up.Default, true},
		{"upstreams[0].timeout", time.Duration(up.Timeout), 90 * time.Second},
		{"upstreams[0].retries", *up.Retries, 0},
		{"upstreams[0].maxRedirects", up.MaxRedirects, 5},
		{"upstreams[0].maxBlobBytes", int64(up.MaxBlobBytes), int64(2 << 30)},
		{"upstreams[0].blobTimeout", time.Duration(up.BlobTimeout), 30 * time.Minute},
		{"upstreams[0].minBytesPerSecond", int64(up.MinBytesPerSecond), int64(4096)},
		{"password from passwordFile", up.Auth.Password, "s3cret"},
		{"upstreams[1].retries unset", c.Upstreams[1].Retries == nil, true},
		{"trust.corp.root", c.Trust["corp"].Root, filepath.Join(dir, "root.json")},
		{"trust.corp.metadata URL kept", c.Trust["corp"].Metadata, "https://tuf.example/metadata"},
		{"trust.corp.refresh", time.Duration(c.Trust["corp"].Refresh), 5 * time.Minute},
		{"trust.corp.maxMetadataBytes", c.Trust["corp"].MaxMetadataBytes, int64(1 << 20)},
		{"policy.rules[0].require", strings.Join(c.Policy.Rules[0].Require, ","), "tuf,in-toto"},
		{"policy.rules[0].inToto.limits.maxSteps", c.Policy.Rules[0].InToto.Limits.MaxSteps, 300},
		{"policy.rules[0].inToto.limits.maxLinks", c.Policy.Rules[0].InToto.Limits.MaxLinks, 2000},
		{"policy.rules[0].inToto.limits.maxMetadataBytes", c.Policy.Rules[0].InToto.Limits.MaxMetadataBytes, int64(8 << 20)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v (%T), want %v (%T)", tc.what, tc.got, tc.got, tc.want, tc.want)
		}
	}
	for in, want := range map[string]int64{`1073741824`: 1 << 30, `"512MiB"`: 512 << 20, `"1TB"`: 1 << 40, `"10K"`: 10 << 10, `"7B"`: 7, `"20GB"`: 20 << 30, `"8388607TiB"`: 8388607 << 40} {
		if got, err := parseSize([]byte(in)); err != nil || got != want {
			t.Errorf("parseSize(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestConfigErrorsSpeakYAML: every mistake is reported by its full key path
// and line, in the file's own terms.
func TestConfigErrorsSpeakYAML(t *testing.T) {
	const ok = "storage: {inmemory: {}}\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"misspelt upstream key", ok + "upstreams:\n  - name: a\n    url: http://a\n    tiemout: 5s\n",
			`line 5: upstreams[0].tiemout: unknown key; did you mean "timeout"?`},
		{"Go field name", ok + "state: /s\nupstreams: [{name: a, url: 'http://a'}]\ntrust: {corp: {metadata: 'http://t', Root: r.json}}\n",
			`trust.corp.Root: unknown key; did you mean "root"?`},
		{"top-level typo", "lisen: x\n" + ok + "upstreams: [{name: a, url: 'http://a'}]\n", `line 1: lisen: unknown key; did you mean "listen"?`},
		{"number as bool", ok + "upstreams: [{name: a, url: 'http://a', default: 1}]\n", `upstreams[0].default: want true or false, got "1"`},
		{"word as number", ok + "upstreams: [{name: a, url: 'http://a', retries: two}]\n", `upstreams[0].retries: want a whole number, got "two"`},
		{"list where a mapping goes", "storage: {inmemory: {}}\nupstreams: {name: a}\n", "line 2: upstreams: want a list, got a mapping"},
		{"bad duration", ok + "upstreams: [{name: a, url: 'http://a', timeout: soon}]\n", `upstreams[0].timeout: invalid duration "soon"`},
		{"bad size", "storage: {inmemory: {}, maxsize: lots}\nupstreams: [{name: a, url: 'http://a'}]\n", `line 1: storage.maxsize: invalid size "lots"`},
		{"bad manifest memory", "storage: {inmemory: {}, manifestmemory: lots}\nupstreams: [{name: a, url: 'http://a'}]\n", `line 1: storage.manifestmemory: invalid size "lots"`},
		{"negative manifest memory", "storage: {inmemory: {}, manifestmemory: -1}\nupstreams: [{name: a, url: 'http://a'}]\n", `storage.manifestmemory: must not be negative`},
		{"size past int64 (once wrapped to 0: unbounded)", "storage: {inmemory: {}, maxsize: 16777216TiB}\nupstreams: [{name: a, url: 'http://a'}]\n",
			`storage.maxsize: size "16777216TiB" is larger than the largest size, 8 EiB`},
		{"auth without access", ok + "upstreams: [{name: a, url: 'http://a'}]\nauth: {realm: r}\n", "access: required with auth"},
		{"mtls without tls", ok + "upstreams: [{name: a, url: 'http://a'}]\nauth: {mtls: {clientCAs: ca.pem}}\naccess: [{match: '**', allow: [anonymous]}]\n", "auth.mtls: needs tls"},
		{"misspelt access key", ok + "upstreams: [{name: a, url: 'http://a'}]\naccess: [{match: '**', alow: [x]}]\n", `access[0].alow: unknown key; did you mean "allow"?`},
		{"negative limit", ok + "upstreams: [{name: a, url: 'http://a'}]\nlimits: {maxConnections: -1}\n", "limits: values must not be negative"},
		{"bad blob bound", ok + "upstreams: [{name: a, url: 'http://a', maxBlobBytes: huge}]\n", `upstreams[0].maxBlobBytes: invalid size "huge"`},
		{"too many redirects", ok + "upstreams: [{name: a, url: 'http://a', maxRedirects: 99}]\n", `upstreams[0].maxRedirects: 99 is outside 0..30`},
		{"unknown storage key", "storage: {inmemory: {}, colour: red}\nupstreams: [{name: a, url: 'http://a'}]\n", "storage.colour: unknown key"},
		{"rule names a missing upstream", ok + "upstreams: [{name: docker.io, url: 'http://a'}]\npolicy: {rules: [{name: r, match: 'ghcr.io/acme/**', mode: allow}]}\n",
			`policy.rules[0].match: "ghcr.io/acme/**" starts with upstream "ghcr.io", which is not configured (upstreams: docker.io)`},
		{"duplicate key", ok + ok + "upstreams: [{name: a, url: 'http://a'}]\n", "line 2: storage: set twice (first on line 1)"},
		{"unknown key", "listen: x\nbogus: 1\nupstreams: [{name: a, url: 'http://a'}]\nstorage: {inmemory: {}}\n", "line 2: bogus: unknown key"},
		{"unknown storage key", "storage: {inmemory: {}, colour: red}\nupstreams: [{name: a, url: 'http://a'}]\n", "storage.colour"},
		{"bad size", "storage: {inmemory: {}, maxsize: lots}\nupstreams: [{name: a, url: 'http://a'}]\n", "storage.maxsize"},
		{"no upstreams", "storage: {inmemory: {}}\n", "upstreams"},
		{"bad duration", "storage: {inmemory: {}}\nupstreams: [{name: a, url: 'http://a', timeout: soon}]\n", "duration"},
		{"trust without root", "storage: {inmemory: {}}\nstate: /tmp/x\nupstreams: [{name: a, url: 'http://a'}]\ntrust: {corp: {metadata: 'http://t'}}\n", "trust.corp.root"},
		{"filesystem without root", "storage: {filesystem: {}}\nupstreams: [{name: a, url: 'http://a'}]\n", "rootdirectory"},
		{"bad log level", "log: {level: loud}\nstorage: {inmemory: {}}\nupstreams: [{name: a, url: 'http://a'}]\n", "log.level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(tc.yaml), 0o644)
			_, err := loadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "json:") || strings.Contains(err.Error(), "JSON") || strings.Contains(err.Error(), "unmarshal") {
				t.Errorf("error speaks JSON: %v", err)
			}
		})
	}
}

// A wildcard first segment matches any upstream, so it names none.
func TestConfigRuleWildcardUpstream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("storage: {inmemory: {}}\nupstreams: [{name: a, url: 'http://a'}]\npolicy: {rules: [{name: r, match: '*/acme/**', mode: allow}]}\n"), 0o644)
	if _, err := loadConfig(path); err != nil {
		t.Fatal(err)
	}
}
