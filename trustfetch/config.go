package trustfetch

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Defaults applied by Open to zero-valued Config fields.
const (
	DefaultRefresh          = 5 * time.Minute
	DefaultMaxMetadataBytes = 16 << 20
	DefaultMaxTargetBytes   = 16 << 20
)

// Config describes one trust repository: a standard TUF repository with
// consistent snapshots, laid out as <repo>/metadata and <repo>/targets.
type Config struct {
	// Name of the trust repository in the configuration; it labels logs,
	// metrics and errors.
	Name string
	// Metadata is the http(s) URL of the metadata directory, or a local
	// directory path (a plain path or a file:// URL) for air-gapped sites.
	Metadata string
	// Targets is the http(s) URL or local directory of the target files.
	// Empty means the sibling "targets" of Metadata: for
	// https://tuf.example/acme/metadata that is https://tuf.example/acme/targets,
	// for /srv/tuf/metadata it is /srv/tuf/targets.
	Targets string
	// Root is the path of the pinned root.json. Mandatory: trust is never
	// established on first use.
	Root string
	// StateDir keeps the verified metadata between refreshes and restarts
	// (rollback protection) and the cache of downloaded targets. Mandatory;
	// one directory per trust repository.
	StateDir string
	// Refresh is the interval between refreshes in Run (default 5m).
	Refresh time.Duration
	// MaxMetadataBytes bounds every metadata file (default 16 MiB).
	MaxMetadataBytes int64
	// MaxTargetBytes bounds every target downloaded by FetchTarget
	// (default 16 MiB).
	MaxTargetBytes int64
	// AllowExpiredFor is an explicit grace past the expiry of the trust
	// metadata (at most MaxAllowExpiredFor): for an offline site whose
	// next import is late. Every use past expiry is logged. Zero: none.
	AllowExpiredFor time.Duration
}

// MaxAllowExpiredFor bounds AllowExpiredFor: a grace is a bridge to the
// next import, never a way to stop expiring.
const MaxAllowExpiredFor = 30 * 24 * time.Hour

// Options carries the injected dependencies. Every field may be left zero.
type Options struct {
	// HTTPClient fetches metadata and targets; nil means a private client
	// with a one-minute timeout (http.DefaultClient is never used).
	HTTPClient *http.Client
	Logger     *zap.Logger
	// Now is the clock for expiry, both during a refresh and between
	// refreshes; nil means time.Now.
	Now func() time.Time
	// Registerer receives the repository's metrics; nil means none.
	Registerer prometheus.Registerer
	// Background makes Open return without contacting the trust server:
	// it loads the persisted, verified metadata of the state directory
	// (if any is unexpired) and Run does the first refresh at once. A
	// server that is down or stalls then never holds up the caller (serve
	// opens its listener right away).
	Background bool
}

// location is where a tree of files lives: an http(s) base URL or a
// local directory.
type location struct {
	url *url.URL // nil for a directory
	dir string
}

func (l location) String() string {
	if l.url != nil {
		return l.url.String()
	}
	return l.dir
}

// parseLocation accepts an http(s) URL, a file:// URL or a directory path.
func parseLocation(field, s string) (location, error) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return location{}, fmt.Errorf("%s: %q is not a valid URL: %w", field, s, err)
		}
		switch u.Scheme {
		case "http", "https":
			if u.Host == "" {
				return location{}, fmt.Errorf("%s: %q has no host", field, s)
			}
			if u.RawQuery != "" || u.Fragment != "" {
				return location{}, fmt.Errorf("%s: %q must not carry a query or fragment", field, s)
			}
			return location{url: u}, nil
		case "file":
			if u.Host != "" && u.Host != "localhost" {
				return location{}, fmt.Errorf("%s: %q names a remote host; a file URL must be local", field, s)
			}
			return location{dir: filepath.Clean(filepath.FromSlash(u.Path))}, nil
		default:
			return location{}, fmt.Errorf("%s: scheme %q is not supported (use http, https, or a local directory path)", field, u.Scheme)
		}
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return location{}, fmt.Errorf("%s: %q: %w", field, s, err)
	}
	return location{dir: abs}, nil
}

// sibling returns the directory named name next to l.
func (l location) sibling(name string) location {
	if l.url != nil {
		return location{url: l.url.JoinPath("..", name)}
	}
	return location{dir: filepath.Join(filepath.Dir(l.dir), name)}
}

// resolved is a validated Config with defaults applied.
type resolved struct {
	Config
	metadata, targets location
}

func (c Config) resolve() (resolved, error) {
	r := resolved{Config: c}
	if strings.TrimSpace(c.Name) == "" {
		return r, fmt.Errorf("trust repository config: Name: required")
	}
	fail := func(format string, args ...any) (resolved, error) {
		return r, fmt.Errorf("trust repository %q config: %s", c.Name, fmt.Sprintf(format, args...))
	}
	if c.Metadata == "" {
		return fail("Metadata: required (URL or directory of the TUF metadata)")
	}
	if c.Root == "" {
		return fail("Root: required (path of the pinned root.json; trust is never established on first use)")
	}
	if c.StateDir == "" {
		return fail("StateDir: required (keeps verified metadata so rollback protection survives restarts)")
	}
	var err error
	if r.metadata, err = parseLocation("Metadata", c.Metadata); err != nil {
		return fail("%v", err)
	}
	if c.Targets == "" {
		r.targets = r.metadata.sibling("targets")
	} else if r.targets, err = parseLocation("Targets", c.Targets); err != nil {
		return fail("%v", err)
	}
	switch {
	case c.Refresh < 0:
		return fail("Refresh: %s is negative", c.Refresh)
	case c.Refresh == 0:
		r.Refresh = DefaultRefresh
	}
	switch {
	case c.MaxMetadataBytes < 0:
		return fail("MaxMetadataBytes: %d is negative", c.MaxMetadataBytes)
	case c.MaxMetadataBytes == 0:
		r.MaxMetadataBytes = DefaultMaxMetadataBytes
	}
	if c.AllowExpiredFor < 0 || c.AllowExpiredFor > MaxAllowExpiredFor {
		return fail("AllowExpiredFor: %s is outside 0 to %s", c.AllowExpiredFor, MaxAllowExpiredFor)
	}
	switch {
	case c.MaxTargetBytes < 0:
		return fail("MaxTargetBytes: %d is negative", c.MaxTargetBytes)
	case c.MaxTargetBytes == 0:
		r.MaxTargetBytes = DefaultMaxTargetBytes
	}
	return r, nil
}
