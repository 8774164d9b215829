package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Directory names inside a repository.
const (
	metadataDirName = "metadata" // served: <base>/metadata
	targetsDirName  = "targets"  // served: <base>/targets
	stagingDirName  = "staging"  // working copies of targets roles; not needed by clients
	rolesDirName    = "roles"    // inside staging
	settingsName    = "settings.json"
)

// DefaultExpiry is how long each role's metadata stays valid after it is
// signed, unless InitOptions.Expiry says otherwise. Delegated roles use the
// targets duration unless they have an entry of their own.
func DefaultExpiry() map[string]time.Duration {
	return map[string]time.Duration{
		metadata.ROOT:      365 * 24 * time.Hour,
		metadata.TARGETS:   90 * 24 * time.Hour,
		metadata.SNAPSHOT:  7 * 24 * time.Hour,
		metadata.TIMESTAMP: 24 * time.Hour,
	}
}

// InitOptions configure a new repository. The zero value is valid.
type InitOptions struct {
	// KeyType of the generated keys: KeyEd25519 (default), KeyECDSA or KeyRSA.
	KeyType string
	// RootThreshold is the number of root keys that must sign root (default 1).
	RootThreshold int
	// RootKeys is the number of root keys to generate (default RootThreshold).
	RootKeys int
	// Expiry overrides DefaultExpiry per role name.
	Expiry map[string]time.Duration
	// HashBins, when not 0, delegates every target name from targets to
	// that many succinct hash bins (a power of two; see DelegateHashBins).
	HashBins int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Options configure Open.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Repo is a TUF repository on disk and the keys that sign it. A Repo is not
// safe for concurrent use by goroutines; separate Repo values (and
// processes) on one repository are, through a file lock.
type Repo struct {
	dir      string
	keys     keyring
	now      func() time.Time
	settings settings
	root     *metadata.Metadata[metadata.RootType]
	// roles are the working copies of the targets roles: what the next
	// Publish signs. They are kept in <dir>/staging/roles so that edits made
	// by separate CLI invocations add up.
	roles map[string]*metadata.Metadata[metadata.TargetsType]
	// bins are the hash bins read so far (see hashbins.go).
	bins binCache
}

// settings are the choices made at Init that later commands need.
type settings struct {
	KeyType string              `json:"keyType"`
	Expiry  map[string]duration `json:"expiry"`
}

type duration time.Duration

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// Init creates a new repository in repoDir with keys in keysDir and
// publishes version 1 of every role (an empty targets role). keysDir must not
// be inside repoDir: the repository directory is meant to be served.
// Clients pin <repoDir>/metadata/1.root.json.
func Init(ctx context.Context, repoDir, keysDir string, opts InitOptions) (*Repo, error) {
	if opts.KeyType == "" {
		opts.KeyType = KeyEd25519
	}
	if err := checkKeyType(opts.KeyType); err != nil {
		return nil, err
	}
	if opts.RootThreshold == 0 {
		opts.RootThreshold = 1
	}
	if opts.RootKeys == 0 {
		opts.RootKeys = opts.RootThreshold
	}
	if opts.RootThreshold < 1 || opts.RootKeys < opts.RootThreshold {
		return nil, fmt.Errorf("root threshold %d with %d root keys: need 1 <= threshold <= keys", opts.RootThreshold, opts.RootKeys)
	}
	exp := settings{KeyType: opts.KeyType, Expiry: map[string]duration{}}
	for role, d := range DefaultExpiry() {
		exp.Expiry[role] = duration(d)
	}
	for role, d := range opts.Expiry {
		if d <= 0 {
			return nil, fmt.Errorf("expiry for %s must be positive, got %s", role, d)
		}
		exp.Expiry[role] = duration(d)
	}
	if opts.HashBins != 0 {
		if _, err := binBits(opts.HashBins); err != nil {
			return nil, err
		}
	}
	if err := checkDirs(repoDir, keysDir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(repoDir, metadataDirName, "1.root.json")); err == nil {
		return nil, fmt.Errorf("%s is already a trust repository", repoDir)
	}
	for _, d := range []string{metadataDirName, targetsDirName, filepath.Join(stagingDirName, rolesDirName)} {
		if err := os.MkdirAll(filepath.Join(repoDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create repository: %w", err)
		}
	}
	if err := os.MkdirAll(keysDir, 0o700); err != nil {
		return nil, fmt.Errorf("create keys directory: %w", err)
	}
	r := &Repo{dir: repoDir, keys: keyring{dir: keysDir}, now: clock(opts.Now), settings: exp,
		roles: map[string]*metadata.Metadata[metadata.TargetsType]{}}
	now := r.now().UTC()

	root := metadata.Root(r.expires(metadata.ROOT, now))
	root.Signed.Roles[metadata.ROOT].Threshold = opts.RootThreshold
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		n := 1
		if role == metadata.ROOT {
			n = opts.RootKeys
		}
		for range n {
			key, err := r.keys.create(role, opts.KeyType)
			if err != nil {
				return nil, fmt.Errorf("init: %w", err)
			}
			if err := root.Signed.AddKey(key, role); err != nil {
				return nil, fmt.Errorf("init: add %s key: %w", role, err)
			}
		}
	}
	if err := r.signRoot(root, nil); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if err := r.writeRoot(root); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	r.root = root
	if err := r.saveSettings(); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	r.roles[metadata.TARGETS] = metadata.Targets(r.expires(metadata.TARGETS, now))
	if err := r.saveRole(metadata.TARGETS); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if opts.HashBins != 0 {
		if _, err := r.delegateHashBins(opts.HashBins); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	if _, err := r.Publish(ctx); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	return r, nil
}

// Open loads an existing repository. keysDir may be empty for read-only use
// and for commands that only stage changes; signing then fails clearly.
func Open(repoDir, keysDir string, opts Options) (*Repo, error) {
	if keysDir != "" {
		if err := checkDirs(repoDir, keysDir); err != nil {
			return nil, err
		}
	}
	r := &Repo{dir: repoDir, keys: keyring{dir: keysDir}, now: clock(opts.Now),
		roles: map[string]*metadata.Metadata[metadata.TargetsType]{}}
	b, err := os.ReadFile(filepath.Join(repoDir, stagingDirName, settingsName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a trust repository made by trustproxy (no %s/%s); create one with init", repoDir, stagingDirName, settingsName)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	if err := json.Unmarshal(b, &r.settings); err != nil {
		return nil, fmt.Errorf("open repository: parse settings: %w", err)
	}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	return r, nil
}

// load reads the newest root and the working copies of the targets roles.
func (r *Repo) load() error {
	root, err := r.latestRoot()
	if err != nil {
		return err
	}
	rolesDir := filepath.Join(r.dir, stagingDirName, rolesDirName)
	entries, err := os.ReadDir(rolesDir)
	if err != nil {
		return err
	}
	roles := map[string]*metadata.Metadata[metadata.TargetsType]{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if e.IsDir() || !ok {
			continue
		}
		md, err := (&metadata.Metadata[metadata.TargetsType]{}).FromFile(filepath.Join(rolesDir, e.Name()))
		if err != nil {
			return fmt.Errorf("staged role %s: %w", name, err)
		}
		roles[name] = md
	}
	if roles[metadata.TARGETS] == nil {
		return fmt.Errorf("no staged targets role in %s", rolesDir)
	}
	r.root, r.roles = root, roles
	return r.refreshBinCache()
}

// edit runs fn holding the repository lock, on state re-read from disk, so
// that separate processes editing one repository (say, two CI jobs adding
// images) neither lose each other's changes nor publish half of them.
func (r *Repo) edit(fn func() error) error {
	return r.editCtx(context.Background(), fn)
}

// editCtx is edit whose wait for the lock ends when ctx does.
func (r *Repo) editCtx(ctx context.Context, fn func() error) error {
	unlock, err := lockFile(ctx, filepath.Join(r.dir, stagingDirName, "lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if err := r.recoverBins(); err != nil {
		return err
	}
	if err := r.load(); err != nil {
		return fmt.Errorf("reload repository: %w", err)
	}
	return fn()
}

// RootPath is the file clients pin: version 1 of root, from which a TUF
// client follows every later root rotation.
func (r *Repo) RootPath() string { return filepath.Join(r.dir, metadataDirName, "1.root.json") }

// RootVersion is the version of the newest root.
func (r *Repo) RootVersion() int64 { return r.root.Signed.Version }

// KeyType is the key type new keys get unless told otherwise.
func (r *Repo) KeyType() string { return r.settings.KeyType }

// checkDirs keeps private keys out of the directory that gets served.
func checkDirs(repoDir, keysDir string) error {
	if repoDir == "" {
		return errors.New("no repository directory given")
	}
	if keysDir == "" {
		return errors.New("no keys directory given")
	}
	repoAbs, err := filepath.Abs(repoDir)
	if err != nil {
		return err
	}
	keysAbs, err := filepath.Abs(keysDir)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(repoAbs, keysAbs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("keys directory %s is inside the repository %s, which is meant to be served: keep keys elsewhere", keysDir, repoDir)
	}
	return nil
}

func clock(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

// expiryFor is how long role's metadata is valid after signing.
func (r *Repo) expiryFor(role string) time.Duration {
	if d, ok := r.settings.Expiry[role]; ok {
		return time.Duration(d)
	}
	if d, ok := r.settings.Expiry[metadata.TARGETS]; ok && !isTopLevel(role) {
		return time.Duration(d)
	}
	def := DefaultExpiry()
	if d, ok := def[role]; ok {
		return d
	}
	return def[metadata.TARGETS]
}

// expires is the expiry of role's metadata signed at now. TUF timestamps
// have second precision.
func (r *Repo) expires(role string, now time.Time) time.Time {
	return now.Add(r.expiryFor(role)).UTC().Truncate(time.Second)
}

func isTopLevel(role string) bool {
	switch role {
	case metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return true
	}
	return false
}

func (r *Repo) metadataPath(name string) string { return filepath.Join(r.dir, metadataDirName, name) }

func (r *Repo) saveSettings() error {
	b, err := json.MarshalIndent(r.settings, "", "\t")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(r.dir, stagingDirName, settingsName), b, 0o644)
}

func (r *Repo) saveRole(role string) error {
	b, err := r.roles[role].ToBytes(true)
	if err != nil {
		return fmt.Errorf("encode staged %s: %w", role, err)
	}
	if err := writeFileAtomic(filepath.Join(r.dir, stagingDirName, rolesDirName, role+".json"), b, 0o644); err != nil {
		return fmt.Errorf("save staged %s: %w", role, err)
	}
	return nil
}
