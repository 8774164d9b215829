package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/trustproxy/trustproxy/policy/intoto"
)

// fileConfig is the YAML configuration file; the README's config reference
// documents every key. Unknown keys are errors.
type fileConfig struct {
	Listen    string            `json:"listen"`
	TLS       *tlsConfig        `json:"tls"`
	Log       logConfig         `json:"log"`
	Storage   storageConfig     `json:"storage"`
	Upstreams []upstreamConfig  `json:"upstreams"`
	Trust     map[string]trustC `json:"trust"`
	// State is where trust metadata is kept between restarts (rollback
	// protection): <state>/trust/<name>.
	State  string       `json:"state"`
	Policy policyConfig `json:"policy"`
	// Auth, Access, Limits and Operator: config_access.go.
	Auth     *authConfig        `json:"auth"`
	Access   []accessRuleConfig `json:"access"`
	Limits   limitsConfig       `json:"limits"`
	Operator operatorConfig     `json:"operator"`
	// signed is the policy target the rules came from (policy.from).
	signed *signedPolicy
	// backgroundTrust is serve's, not a key: trust repositories start
	// from their persisted state and refresh in the background.
	backgroundTrust bool
}

type tlsConfig struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

type logConfig struct {
	Level  string `json:"level"`  // debug, info, warn, error
	Format string `json:"format"` // json (default), console
}

// storageConfig is distribution's shape: one key naming the driver with its
// parameters, plus trustproxy's own keys.
type storageConfig struct {
	Driver     string
	Parameters map[string]any
	MaxSize    int64
	SpoolDir   string
	// DownloadLease is the s3 download lease lifetime (0: the default).
	DownloadLease duration
	// ManifestMemory bounds the verified manifests answered from memory;
	// nil: cache.DefaultManifestMemory, 0: none.
	ManifestMemory *int64
}

// cacheManifestMemory is ManifestMemory in cache.Options' terms.
func (s *storageConfig) cacheManifestMemory() int64 {
	switch {
	case s.ManifestMemory == nil:
		return 0 // the cache's default
	case *s.ManifestMemory == 0:
		return -1 // none
	}
	return *s.ManifestMemory
}

func (s *storageConfig) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("want a mapping: a driver (filesystem, inmemory, s3) and options")
	}
	for k, v := range raw {
		switch k {
		case "maxsize":
			n, err := parseSize(v)
			if err != nil {
				return &keyError{"maxsize", err}
			}
			s.MaxSize = n
		case "spooldir":
			if err := json.Unmarshal(v, &s.SpoolDir); err != nil {
				return &keyError{"spooldir", errors.New("want a directory")}
			}
		case "manifestmemory":
			n, err := parseSize(v)
			if err != nil {
				return &keyError{"manifestmemory", err}
			}
			s.ManifestMemory = &n
		case "downloadlease":
			if err := json.Unmarshal(v, &s.DownloadLease); err != nil {
				return &keyError{"downloadlease", err}
			}
		case "filesystem", "inmemory", "s3":
			if s.Driver != "" {
				return fmt.Errorf("two drivers configured (%s and %s); choose one", s.Driver, k)
			}
			s.Driver = k
			if string(v) != "null" {
				if err := json.Unmarshal(v, &s.Parameters); err != nil {
					return &keyError{k, errors.New("want a mapping of the driver's parameters")}
				}
			}
		default:
			return &keyError{k, errors.New("unknown key (drivers: filesystem, inmemory, s3; options: maxsize, spooldir, downloadlease, manifestmemory)")}
		}
	}
	return nil
}

type upstreamConfig struct {
	Name    string       `json:"name"`
	URL     string       `json:"url"`
	Default bool         `json:"default"`
	Auth    upstreamAuth `json:"auth"`
	Timeout duration     `json:"timeout"`
	Retries *int         `json:"retries"`
	// Bounds on redirects and on one blob download (config_bounds.go).
	MaxRedirects      int      `json:"maxRedirects"`
	MaxBlobBytes      byteSize `json:"maxBlobBytes"`
	BlobTimeout       duration `json:"blobTimeout"`
	MinBytesPerSecond byteSize `json:"minBytesPerSecond"`
	// Offline: never contacted; served from the cache (mirror import) only.
	Offline bool `json:"offline"`
}

type upstreamAuth struct {
	Username     string `json:"username"`
	Password     string `json:"password"`
	PasswordFile string `json:"passwordFile"`
	// Keychain uses docker's config.json and credential helpers.
	Keychain bool `json:"keychain"`
}

type trustC struct {
	Metadata         string   `json:"metadata"`
	Targets          string   `json:"targets"`
	Root             string   `json:"root"`
	Refresh          duration `json:"refresh"`
	MaxMetadataBytes int64    `json:"maxMetadataBytes"`
	MaxTargetBytes   int64    `json:"maxTargetBytes"`
	Notary           *notaryC `json:"notary"`
	// AllowExpiredFor is the bounded, logged grace past expiry (offline sites).
	AllowExpiredFor duration `json:"allowExpiredFor"`
}

type policyConfig struct {
	Default string       `json:"default"`
	Rules   []ruleConfig `json:"rules"`
	// From: signed_policy.go.
	From *policyFromConfig `json:"from"`
}

type ruleConfig struct {
	Name      string       `json:"name"`
	Match     string       `json:"match"`
	Mode      string       `json:"mode"`
	Trust     string       `json:"trust"`
	TrustName string       `json:"trustName"`
	Require   []string     `json:"require"`
	InToto    inTotoConfig `json:"inToto"`
	// Attachments: disabled, or the artifactTypes served (README,
	// Signatures, SBOMs and attestations).
	Attachments attachmentsConfig `json:"attachments"`
}

type attachmentsConfig struct {
	Disabled      bool     `json:"disabled"`
	ArtifactTypes []string `json:"artifactTypes"`
}

type inTotoConfig struct {
	LayoutKeys []string          `json:"layoutKeys"`
	Subject    string            `json:"subject"`
	Parameters map[string]string `json:"parameters"`
	// Limits: maxSteps, maxInspections, maxLinks, maxLayoutKeys,
	// maxParameters, maxMetadataBytes (README, in-toto limits).
	Limits intoto.Limits `json:"limits"`
}

// duration reads "30s", "5m", "1h30m".
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration like 30s, 5m or 1h30m")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q (want e.g. 30s, 5m or 1h30m)", s)
	}
	*d = duration(v)
	return nil
}

var sizePattern = regexp.MustCompile(`^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$`)

// parseSize reads a byte count: 1073741824, "512MiB", "50GiB", "1TB". The
// units K, M, G and T are powers of 1024 with or without "i" and "B"
// ("20GB" is 20 GiB). A size beyond int64 is an error, never a wrap-around
// (16777216TiB once became 0: an unbounded cache).
func parseSize(raw json.RawMessage) (int64, error) {
	var n int64
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("want a number of bytes or a size like 512MiB or 50GiB")
	}
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (want e.g. 512MiB or 50GiB)", s)
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", s, err)
	}
	unit := strings.TrimSuffix(strings.TrimSuffix(m[2], "B"), "i")
	mult := map[string]int64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
	if v > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is larger than the largest size, 8 EiB", s)
	}
	return v * mult, nil
}

// loadConfig reads and validates the configuration file. Relative paths in
// it are relative to the file's directory.
func loadConfig(path string) (*fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var c fileConfig
	if err := checkKeys(b, &c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.validate(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

func (c *fileConfig) validate(base string) error {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") {
			return p
		}
		return filepath.Join(base, p)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:5000"
	}
	if c.TLS != nil {
		if c.TLS.Cert == "" || c.TLS.Key == "" {
			return fmt.Errorf("tls: both cert and key are required")
		}
		c.TLS.Cert, c.TLS.Key = abs(c.TLS.Cert), abs(c.TLS.Key)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "json", "console":
	default:
		return fmt.Errorf("log.format: %q is not one of json, console", c.Log.Format)
	}
	if c.Storage.Driver == "" {
		c.Storage.Driver = "filesystem"
	}
	if c.Storage.Driver == "filesystem" {
		if c.Storage.Parameters == nil {
			c.Storage.Parameters = map[string]any{}
		}
		root, _ := c.Storage.Parameters["rootdirectory"].(string)
		if root == "" {
			return fmt.Errorf("storage.filesystem.rootdirectory: required")
		}
		c.Storage.Parameters["rootdirectory"] = abs(root)
	}
	if c.Storage.MaxSize < 0 {
		return fmt.Errorf("storage.maxsize: must not be negative")
	}
	if m := c.Storage.ManifestMemory; m != nil && *m < 0 {
		return fmt.Errorf("storage.manifestmemory: must not be negative (0 keeps no manifest in memory)")
	}
	c.Storage.SpoolDir = abs(c.Storage.SpoolDir)
	if len(c.Upstreams) == 0 {
		return fmt.Errorf("upstreams: at least one upstream is required")
	}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		if u.Auth.PasswordFile != "" {
			if u.Auth.Password != "" {
				return fmt.Errorf("upstreams[%d].auth: set password or passwordFile, not both", i)
			}
			b, err := os.ReadFile(abs(u.Auth.PasswordFile))
			if err != nil {
				return fmt.Errorf("upstreams[%d].auth.passwordFile: %w", i, err)
			}
			u.Auth.Password = strings.TrimSpace(string(b))
		}
		if u.Retries != nil && (*u.Retries < 0 || *u.Retries > 10) {
			return fmt.Errorf("upstreams[%d].retries: %d is outside 0..10", i, *u.Retries)
		}
		if u.MaxRedirects < 0 || u.MaxRedirects > 30 {
			return fmt.Errorf("upstreams[%d].maxRedirects: %d is outside 0..30", i, u.MaxRedirects)
		}
	}
	if len(c.Trust) > 0 && c.State == "" {
		return fmt.Errorf("state: required when trust repositories are configured (it keeps rollback protection across restarts)")
	}
	c.State = abs(c.State)
	for name, t := range c.Trust {
		if t.Notary != nil {
			if err := t.Notary.validate(name, t, abs); err != nil {
				return err
			}
			continue
		}
		if t.Root == "" {
			return fmt.Errorf("trust.%s.root: required: the pinned root.json (trustproxy never trusts on first use)", name)
		}
		if t.Metadata == "" {
			return fmt.Errorf("trust.%s.metadata: required: URL or directory of the TUF metadata", name)
		}
		t.Root, t.Metadata, t.Targets = abs(t.Root), abs(t.Metadata), abs(t.Targets)
		c.Trust[name] = t
	}
	if err := c.checkRuleUpstreams(); err != nil {
		return err
	}
	if err := c.validatePolicyFrom(); err != nil {
		return err
	}
	if err := c.validateAccess(abs); err != nil {
		return err
	}
	for i := range c.Policy.Rules {
		for j, k := range c.Policy.Rules[i].InToto.LayoutKeys {
			c.Policy.Rules[i].InToto.LayoutKeys[j] = abs(k)
		}
	}
	return nil
}

// checkRuleUpstreams refuses a rule whose pattern starts with an upstream
// name that is not configured: it could never match, so the images it was
// meant to govern would silently fall to the default.
func (c *fileConfig) checkRuleUpstreams() error {
	names := make([]string, 0, len(c.Upstreams))
	known := map[string]bool{}
	for _, u := range c.Upstreams {
		names = append(names, u.Name)
		known[u.Name] = true
	}
	for i, r := range c.Policy.Rules {
		first, _, _ := strings.Cut(r.Match, "/")
		if first == "" || strings.ContainsAny(first, "*?[") || known[first] {
			continue
		}
		return fmt.Errorf("policy.rules[%d].match: %q starts with upstream %q, which is not configured (upstreams: %s)",
			i, r.Match, first, strings.Join(names, ", "))
	}
	return nil
}
