// Succinct hash-bin delegations (TUF specification "succinct_roles", TAP 15):
// targets delegates every target name to one of 2^k bins, chosen by the
// first k bits of the sha256 of the name, all signed by one bin key set. A
// repository of a million targets then changes, and clients refetch, one
// bin of a few hundred kilobytes per added target instead of one role
// holding everything.
//
// The bins' working copies live in <repo>/staging/bins, read only when an
// edit touches them: adding one target reads, rewrites and re-signs one
// bin. An edit that touches many bins (a bulk add) writes the new copies
// next to the old ones, records them in a journal, then renames them into
// place, so a crash leaves the edit either not staged or, once the journal
// is written, staged whole by the next edit that takes the lock.

package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// BinPrefix names the hash bins (bins-000 … bins-3ff for 1,024 bins) and
// the directory of their keys, <keys>/bins.
const BinPrefix = "bins"

// MaxHashBins bounds the bin count: the snapshot lists every bin, and a
// client reads the whole snapshot on every refresh that changed anything.
const MaxHashBins = 1 << 16

// Files inside <repo>/staging/bins.
const (
	binsDirName    = "bins"
	binJournalName = "journal.json" // bins whose .new copies replace the working copies
	binDirtyName   = "dirty.json"   // bins changed since they were last published
	binExpiresName = "expires.json" // when each published bin expires (Unix seconds)
	binGenName     = "generation"   // changes with every staged edit of the bins
	binNewSuffix   = ".json.new"    // a bin's next working copy, named in the journal
	binFileSuffix  = ".json"        // a bin's working copy
)

// binCache holds the bins read (and perhaps changed) by this Repo. It is
// valid while <staging>/bins/generation says gen.
type binCache struct {
	gen     string
	loaded  map[string]*metadata.Metadata[metadata.TargetsType]
	touched map[string]bool // changed in memory, not yet staged
	// bodies are the canonical encodings of loaded bins' targets as last
	// staged (binEncoder.targetsBody), for the Publish that follows.
	bodies map[string][]byte
}

// DelegateHashBins delegates every target name from targets to bins
// succinct hash bins (a power of two, 2 to MaxHashBins) signed by one newly
// generated key in <keys>/bins. targets must not delegate anything yet;
// targets it lists itself stay there (clients find them first). The
// delegation and the bins are published by the next Publish.
func (r *Repo) DelegateHashBins(bins int) (keyIDs []string, err error) {
	err = r.edit(func() (err error) {
		keyIDs, err = r.delegateHashBins(bins)
		return err
	})
	return keyIDs, err
}

func (r *Repo) delegateHashBins(bins int) ([]string, error) {
	bitLen, err := binBits(bins)
	if err != nil {
		return nil, err
	}
	targets := r.roles[metadata.TARGETS]
	if d := targets.Signed.Delegations; d != nil && (len(d.Roles) > 0 || d.SuccinctRoles != nil) {
		return nil, errors.New("hash bins: targets already delegates names; hash bins must be its only delegation")
	}
	key, err := r.keys.create(BinPrefix, r.settings.KeyType)
	if err != nil {
		return nil, fmt.Errorf("hash bins: %w", err)
	}
	id, err := key.ID()
	if err != nil {
		return nil, fmt.Errorf("hash bins: %w", err)
	}
	targets.Signed.Delegations = &metadata.Delegations{
		Keys: map[string]*metadata.Key{id: key},
		SuccinctRoles: &metadata.SuccinctRoles{KeyIDs: []string{id}, Threshold: 1,
			BitLength: bitLen, NamePrefix: BinPrefix},
	}
	if err := r.saveRole(metadata.TARGETS); err != nil {
		return nil, fmt.Errorf("hash bins: %w", err)
	}
	return []string{id}, nil
}

// binBits is the bit_length of n bins.
func binBits(n int) (int, error) {
	if n < 2 || n > MaxHashBins || n&(n-1) != 0 {
		return 0, fmt.Errorf("hash bins: %d bins: want a power of two from 2 to %d", n, MaxHashBins)
	}
	return bits.TrailingZeros(uint(n)), nil
}

// HashBins is the number of hash bins targets delegates to (0: none).
func (r *Repo) HashBins() int {
	sr := r.succinct()
	if sr == nil {
		return 0
	}
	_, n := sr.GetSuffixLen()
	return n
}

// BinFor is the hash bin that holds name, or "" without hash bins.
func (r *Repo) BinFor(name string) string {
	sr := r.succinct()
	if sr == nil {
		return ""
	}
	return sr.GetRolesForTarget(name)[0].Name
}

func (r *Repo) succinct() *metadata.SuccinctRoles {
	t := r.roles[metadata.TARGETS]
	if t == nil || t.Signed.Delegations == nil {
		return nil
	}
	return t.Signed.Delegations.SuccinctRoles
}

func (r *Repo) isBin(role string) bool {
	sr := r.succinct()
	return sr != nil && sr.IsDelegatedRole(role)
}

// hasRole says whether role is a targets role of the working copy.
func (r *Repo) hasRole(role string) bool {
	_, ok := r.roles[role]
	return ok || r.isBin(role)
}

// role is the working copy of role, reading a hash bin on first use; ok is
// false when there is no such role.
func (r *Repo) role(role string) (md *metadata.Metadata[metadata.TargetsType], ok bool, err error) {
	if md, ok := r.roles[role]; ok {
		return md, true, nil
	}
	if !r.isBin(role) {
		return nil, false, nil
	}
	if md, err = r.loadBin(role); err != nil {
		return nil, false, err
	}
	return md, true, nil
}

func (r *Repo) binsDir() string { return filepath.Join(r.dir, stagingDirName, binsDirName) }

func (r *Repo) loadBin(name string) (*metadata.Metadata[metadata.TargetsType], error) {
	if md := r.bins.loaded[name]; md != nil {
		return md, nil
	}
	md, err := r.readBin(name)
	if err != nil {
		return nil, err
	}
	r.cacheBin(name, md)
	return md, nil
}

// readBin reads a bin's working copy; a bin never staged is empty.
func (r *Repo) readBin(name string) (*metadata.Metadata[metadata.TargetsType], error) {
	b, err := os.ReadFile(filepath.Join(r.binsDir(), name+binFileSuffix))
	if errors.Is(err, fs.ErrNotExist) {
		return metadata.Targets(r.expires(name, r.now())), nil
	}
	if err != nil {
		return nil, fmt.Errorf("staged bin %s: %w", name, err)
	}
	md, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("staged bin %s: %w", name, err)
	}
	return md, nil
}

func (r *Repo) cacheBin(name string, md *metadata.Metadata[metadata.TargetsType]) {
	if r.bins.loaded == nil {
		r.bins.loaded = map[string]*metadata.Metadata[metadata.TargetsType]{}
	}
	r.bins.loaded[name] = md
}

// loadBins reads the named bins, those not in memory in parallel.
func (r *Repo) loadBins(ctx context.Context, names []string) ([]*metadata.Metadata[metadata.TargetsType], error) {
	out := make([]*metadata.Metadata[metadata.TargetsType], len(names))
	var missing []int
	for i, n := range names {
		if md := r.bins.loaded[n]; md != nil {
			out[i] = md
		} else {
			missing = append(missing, i)
		}
	}
	err := parallel(ctx, len(missing), func(j int) (err error) {
		i := missing[j]
		out[i], err = r.readBin(names[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, i := range missing {
		r.cacheBin(names[i], out[i])
	}
	return out, nil
}

// touchBin records that bin was changed in memory.
func (r *Repo) touchBin(name string) {
	if r.bins.touched == nil {
		r.bins.touched = map[string]bool{}
	}
	r.bins.touched[name] = true
	delete(r.bins.bodies, name)
}

// refreshBinCache drops what another process may have changed since this
// Repo read it, and what this Repo changed but did not stage.
func (r *Repo) refreshBinCache() error {
	gen, err := os.ReadFile(filepath.Join(r.binsDir(), binGenName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("staged bins: %w", err)
	}
	if string(gen) != r.bins.gen {
		r.bins = binCache{gen: string(gen)}
		return nil
	}
	for name := range r.bins.touched {
		delete(r.bins.loaded, name)
		delete(r.bins.bodies, name)
	}
	r.bins.touched = nil
	return nil
}

// saveRoles stages the named roles: each ordinary role in its own file, the
// hash bins together through the journal.
func (r *Repo) saveRoles(roles map[string]bool) error {
	var bins []string
	for role := range roles {
		if r.isBin(role) {
			bins = append(bins, role)
			continue
		}
		if err := r.saveRole(role); err != nil {
			return err
		}
	}
	return r.stageBins(bins)
}

type binJournal struct {
	Bins []string `json:"bins"`
}

// stageBins writes the working copies of bins as one all-or-nothing step:
// every new copy is written and synced beside the old one, then the
// journal naming them is, then they are renamed into place. A crash before
// the journal is written leaves the old copies; after, the next edit
// completes the renames (recoverBins).
func (r *Repo) stageBins(bins []string) error {
	if len(bins) == 0 {
		return nil
	}
	if err := r.writeBinJournal(bins); err != nil {
		return fmt.Errorf("stage bins: %w", err)
	}
	gen, err := r.applyBinJournal()
	if err != nil {
		return fmt.Errorf("stage bins: %w", err)
	}
	r.bins.gen, r.bins.touched = gen, nil
	return nil
}

// writeBinJournal is the first half of stageBins: after it returns, the
// edit is durable and completes even if the process dies.
func (r *Repo) writeBinJournal(bins []string) error {
	sort.Strings(bins)
	dir := r.binsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := make([]pendingFile, len(bins))
	bodies := make([][]byte, len(bins))
	var enc binEncoder
	err := parallel(context.Background(), len(bins), func(i int) error {
		md := r.bins.loaded[bins[i]]
		body, fast, err := enc.targetsBody(&md.Signed)
		var b []byte
		if fast {
			b = newBinFile(&md.Signed, body).finish(md.Signatures)
			bodies[i] = body
		} else if err == nil {
			b, err = md.ToBytes(false)
		}
		files[i] = pendingFile{bins[i] + binNewSuffix, b}
		return err
	})
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if r.bins.bodies == nil {
		r.bins.bodies = map[string][]byte{}
	}
	for i, b := range bodies {
		if b != nil {
			r.bins.bodies[bins[i]] = b
		}
	}
	if err := writeSynced(dir, files); err != nil {
		return err
	}
	j, err := json.Marshal(binJournal{Bins: bins})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, binJournalName), j, 0o644); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// recoverBins completes an edit of the bins that a crash interrupted after
// its journal was written. Only called holding the repository lock.
func (r *Repo) recoverBins() error {
	if _, err := r.applyBinJournal(); err != nil {
		return fmt.Errorf("complete an interrupted edit of the hash bins: %w", err)
	}
	// New copies without a journal are an edit that died before it was
	// staged: drop them.
	stale, err := filepath.Glob(filepath.Join(r.binsDir(), "*"+binNewSuffix))
	if err != nil {
		return err
	}
	for _, p := range stale {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove an unstaged copy: %w", err)
		}
	}
	return nil
}

// applyBinJournal marks the journal's bins dirty, renames their new copies
// into place, records a new generation and removes the journal. Repeating
// it after a crash part-way is harmless.
func (r *Repo) applyBinJournal() (gen string, err error) {
	dir := r.binsDir()
	b, err := os.ReadFile(filepath.Join(dir, binJournalName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var j binJournal
	if err := json.Unmarshal(b, &j); err != nil {
		return "", fmt.Errorf("journal: %w", err)
	}
	dirty, err := r.readBinSet(binDirtyName)
	if err != nil {
		return "", err
	}
	for _, n := range j.Bins {
		if !roleNameRE.MatchString(n) {
			return "", fmt.Errorf("journal names %q, not a bin", n)
		}
		dirty[n] = true
	}
	if err := r.writeBinSet(binDirtyName, dirty); err != nil {
		return "", err
	}
	for _, n := range j.Bins {
		err := os.Rename(filepath.Join(dir, n+binNewSuffix), filepath.Join(dir, n+binFileSuffix))
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // renamed before a crash
			return "", err
		}
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	g := make([]byte, 16)
	if _, err := rand.Read(g); err != nil {
		return "", err
	}
	gen = hex.EncodeToString(g)
	if err := writeFileAtomic(filepath.Join(dir, binGenName), []byte(gen), 0o644); err != nil {
		return "", err
	}
	if err := os.Remove(filepath.Join(dir, binJournalName)); err != nil {
		return "", err
	}
	return gen, syncDir(dir)
}

func (r *Repo) readBinSet(name string) (map[string]bool, error) {
	set := map[string]bool{}
	var list []string
	if err := r.readBinFile(name, &list); err != nil {
		return nil, err
	}
	for _, n := range list {
		set[n] = true
	}
	return set, nil
}

func (r *Repo) writeBinSet(name string, set map[string]bool) error {
	list := make([]string, 0, len(set))
	for n := range set {
		list = append(list, n)
	}
	sort.Strings(list)
	return r.writeBinFile(name, list)
}

func (r *Repo) readBinFile(name string, v any) error {
	b, err := os.ReadFile(filepath.Join(r.binsDir(), name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (r *Repo) writeBinFile(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(r.binsDir(), name), b, 0o644)
}

// binsDue lists the bins the next Publish signs: changed, never published
// (or published before the bins were delegated as they are now), and, with
// renew, past half their lifetime.
func (r *Repo) binsDue(pub *published, now time.Time, renew bool) ([]string, error) {
	sr := r.succinct()
	if sr == nil {
		return nil, nil
	}
	dirty, err := r.readBinSet(binDirtyName)
	if err != nil {
		return nil, err
	}
	expires := map[string]int64{}
	if err := r.readBinFile(binExpiresName, &expires); err != nil {
		return nil, err
	}
	var due []string
	for _, name := range sr.GetRoles() {
		published := pub.snapshot != nil && pub.snapshot.Signed.Meta[name+".json"] != nil
		exp, known := expires[name]
		switch {
		case dirty[name], !published, !known:
		case renew && time.Unix(exp, 0).Sub(now) <= r.expiryFor(name)/2:
		default:
			continue
		}
		due = append(due, name)
	}
	return due, nil
}

// publishedBins records, after a Publish wrote them, that bins are signed
// as they are staged, and when each expires.
func (r *Repo) publishedBins(signed map[string]time.Time) error {
	if len(signed) == 0 {
		return nil
	}
	dirty, err := r.readBinSet(binDirtyName)
	if err != nil {
		return err
	}
	expires := map[string]int64{}
	if err := r.readBinFile(binExpiresName, &expires); err != nil {
		return err
	}
	for n, exp := range signed {
		delete(dirty, n)
		expires[n] = exp.Unix()
	}
	if err := r.writeBinFile(binExpiresName, expires); err != nil {
		return err
	}
	return r.writeBinSet(binDirtyName, dirty)
}

// HashBinsFor is the bin count for a repository expected to hold n
// targets: the power of two that keeps about a thousand targets (≈ 190 KB)
// per bin, at least 16 and at most MaxHashBins. A change re-signs and a
// client refetches one bin plus the snapshot (≈ 175 bytes per bin), whose
// sum is smallest near sqrt(1.09·n) bins; for 1,000,000 targets that is
// 1,024 bins: a 187 KB bin and a 180 KB snapshot, 0.19 % of the metadata.
func HashBinsFor(n int) int {
	bins := 16
	for bins < MaxHashBins && n/bins > 1000 {
		bins *= 2
	}
	return bins
}
