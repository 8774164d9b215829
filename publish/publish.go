package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Result says what Publish or Timestamp signed.
type Result struct {
	// Root is the root version clients will see.
	Root int64
	// Roles maps each targets role signed in this run to its new version,
	// hash bins apart.
	Roles map[string]int64
	// Bins maps each hash bin signed in this run to its new version.
	Bins map[string]int64
	// Snapshot and Timestamp are the versions now published (Snapshot is
	// unchanged by Timestamp).
	Snapshot, Timestamp int64
	// Expires is when the new timestamp expires: the repository must be
	// re-timestamped before then.
	Expires time.Time
	// Warnings are things that will break clients soon, e.g. a snapshot
	// that expires before the new timestamp does.
	Warnings []string
}

// published is the repository as clients see it now.
type published struct {
	timestamp *metadata.Metadata[metadata.TimestampType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
}

// Publish signs a new version of every targets role whose working copy
// changed, whose metadata is past half its lifetime, or whose signatures no
// longer satisfy its delegator (after a key rotation); then a new snapshot
// and timestamp. Everything is signed before anything is written.
func (r *Repo) Publish(ctx context.Context) (*Result, error) {
	var res *Result
	err := r.editCtx(ctx, func() error {
		p, err := r.prepare(ctx)
		if err != nil {
			return err
		}
		if err := p.commit(); err != nil {
			return err
		}
		res = p.result
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return res, nil
}

// pending is a signed, not yet written, new state of the repository.
type pending struct {
	r      *Repo
	files  []pendingFile
	staged map[string]*metadata.Metadata[metadata.TargetsType]
	bins   map[string]time.Time // hash bins signed, and their expiry
	result *Result
}

type pendingFile struct {
	name string
	data []byte
}

// prepare signs everything Publish writes. Nothing is written, so a missing
// key leaves the repository as it was.
func (r *Repo) prepare(ctx context.Context) (*pending, error) {
	now := r.now().UTC()
	pub, err := r.loadPublished()
	if err != nil {
		return nil, err
	}
	res := &Result{Root: r.root.Signed.Version, Roles: map[string]int64{}, Bins: map[string]int64{}}
	meta := map[string]*metadata.MetaFiles{}
	if pub.snapshot != nil {
		for k, v := range pub.snapshot.Signed.Meta {
			meta[k] = v
		}
	}
	var files []pendingFile
	staged := map[string]*metadata.Metadata[metadata.TargetsType]{}
	for _, role := range r.roleOrder() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		want := r.roleKeysOf(role)
		var prev *metadata.Metadata[metadata.TargetsType]
		if mf, ok := meta[role+".json"]; ok {
			if prev, err = r.readRole(role, mf.Version); err != nil {
				return nil, err
			}
		}
		if prev != nil {
			same, err := sameContent(r.roles[role], prev)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", role, err)
			}
			if same && prev.Signed.Expires.Sub(now) > r.expiryFor(role)/2 && r.verifyRole(role, prev) == nil {
				continue
			}
		}
		md := *r.roles[role]
		md.Signatures = []metadata.Signature{}
		md.Signed.Version = 1
		if prev != nil {
			md.Signed.Version = prev.Signed.Version + 1
		}
		md.Signed.Expires = r.expires(role, now)
		if err := r.sign(want, func(s signature.Signer) error { _, err := md.Sign(s); return err }); err != nil {
			return nil, err
		}
		if err := r.verifyRole(role, &md); err != nil {
			return nil, fmt.Errorf("%s: signed metadata does not verify: %w", role, err)
		}
		b, err := md.ToBytes(true)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", role, err)
		}
		meta[role+".json"] = metaFile(md.Signed.Version, b)
		files = append(files, pendingFile{fmt.Sprintf("%d.%s.json", md.Signed.Version, role), b})
		staged[role] = &md
		res.Roles[role] = md.Signed.Version
	}

	due, err := r.binsDue(pub, now, true)
	if err != nil {
		return nil, err
	}
	bins, err := r.signBins(ctx, due, pub, now)
	if err != nil {
		return nil, err
	}
	for k, v := range bins.meta {
		meta[k] = v
	}
	files = append(files, bins.files...)
	res.Bins = bins.versions

	snap := metadata.Snapshot(r.expires(metadata.SNAPSHOT, now))
	if pub.snapshot != nil {
		snap.Signed.Version = pub.snapshot.Signed.Version + 1
	}
	snap.Signed.Meta = meta
	if err := r.sign(rootRoleKeys(r.root, metadata.SNAPSHOT), func(s signature.Signer) error { _, err := snap.Sign(s); return err }); err != nil {
		return nil, err
	}
	if err := r.root.VerifyDelegate(metadata.SNAPSHOT, snap); err != nil {
		return nil, fmt.Errorf("snapshot: signed metadata does not verify: %w", err)
	}
	snapBytes, err := snap.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	files = append(files, pendingFile{fmt.Sprintf("%d.snapshot.json", snap.Signed.Version), snapBytes})

	ts, err := r.newTimestamp(pub, now, snap.Signed.Version, snapBytes)
	if err != nil {
		return nil, err
	}
	files = append(files, pendingFile{"timestamp.json", ts.data})
	res.Snapshot = snap.Signed.Version
	res.Timestamp = ts.md.Signed.Version
	res.Expires = ts.md.Signed.Expires
	res.Warnings = r.warnings(now, snap.Signed.Expires, ts.md.Signed.Expires)
	return &pending{r: r, files: files, staged: staged, bins: bins.expires, result: res}, nil
}

// commit writes the new state: role metadata (new file names, synced
// together) and snapshot first, timestamp.json last, so a client reading
// meanwhile sees the old or the new repository, never a timestamp naming
// files that are not there yet.
func (p *pending) commit() error {
	roles, top := p.files[:len(p.files)-2], p.files[len(p.files)-2:] // snapshot, timestamp
	if err := writeSynced(p.r.metadataPath(""), roles); err != nil {
		return err
	}
	for _, f := range top {
		if err := writeFileAtomic(p.r.metadataPath(f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	for role, md := range p.staged {
		// The working copy records the published version and expiry so a
		// later Publish can tell that nothing changed since.
		p.r.roles[role].Signed.Version = md.Signed.Version
		p.r.roles[role].Signed.Expires = md.Signed.Expires
		if err := p.r.saveRole(role); err != nil {
			return err
		}
	}
	if err := p.r.publishedBins(p.bins); err != nil {
		return fmt.Errorf("record the published hash bins (the next publish signs them again): %w", err)
	}
	return nil
}

// Timestamp signs a new timestamp for the current snapshot, nothing else: the
// frequent, online-key operation that keeps clients from treating the
// repository as frozen. Run it more often than the timestamp expiry.
func (r *Repo) Timestamp(ctx context.Context) (*Result, error) {
	var res *Result
	err := r.editCtx(ctx, func() (err error) {
		res, err = r.timestamp(ctx)
		return err
	})
	return res, err
}

func (r *Repo) timestamp(ctx context.Context) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	now := r.now().UTC()
	pub, err := r.loadPublished()
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	if pub.snapshot == nil {
		return nil, errors.New("timestamp: nothing published yet")
	}
	snapName := fmt.Sprintf("%d.snapshot.json", pub.snapshot.Signed.Version)
	snapBytes, err := os.ReadFile(r.metadataPath(snapName))
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	ts, err := r.newTimestamp(pub, now, pub.snapshot.Signed.Version, snapBytes)
	if err != nil {
		return nil, err // names the timestamp role already
	}
	if err := writeFileAtomic(r.metadataPath("timestamp.json"), ts.data, 0o644); err != nil {
		return nil, fmt.Errorf("timestamp: write: %w", err)
	}
	return &Result{
		Root:      r.root.Signed.Version,
		Roles:     map[string]int64{},
		Snapshot:  pub.snapshot.Signed.Version,
		Timestamp: ts.md.Signed.Version,
		Expires:   ts.md.Signed.Expires,
		Warnings:  r.warnings(now, pub.snapshot.Signed.Expires, ts.md.Signed.Expires),
	}, nil
}

type signedTimestamp struct {
	md   *metadata.Metadata[metadata.TimestampType]
	data []byte
}

func (r *Repo) newTimestamp(pub *published, now time.Time, snapVersion int64, snapBytes []byte) (*signedTimestamp, error) {
	ts := metadata.Timestamp(r.expires(metadata.TIMESTAMP, now))
	if pub.timestamp != nil {
		ts.Signed.Version = pub.timestamp.Signed.Version + 1
	}
	ts.Signed.Meta["snapshot.json"] = metaFile(snapVersion, snapBytes)
	if err := r.sign(rootRoleKeys(r.root, metadata.TIMESTAMP), func(s signature.Signer) error { _, err := ts.Sign(s); return err }); err != nil {
		return nil, err
	}
	if err := r.root.VerifyDelegate(metadata.TIMESTAMP, ts); err != nil {
		return nil, fmt.Errorf("timestamp: signed metadata does not verify: %w", err)
	}
	b, err := ts.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	return &signedTimestamp{ts, b}, nil
}

// warnings reports what will expire before the timestamp does: the
// timestamp cannot extend a snapshot's or root's life.
func (r *Repo) warnings(now, snapExpires, tsExpires time.Time) []string {
	var w []string
	if !snapExpires.After(tsExpires) {
		w = append(w, fmt.Sprintf("snapshot expires %s, before the new timestamp (%s): run publish before then", snapExpires.Format(time.RFC3339), tsExpires.Format(time.RFC3339)))
	}
	if re := r.root.Signed.Expires; re.Sub(now) < r.expiryFor(metadata.ROOT)/4 {
		w = append(w, fmt.Sprintf("root expires %s: sign a new root (rotate) before then", re.Format(time.RFC3339)))
	}
	return w
}

// sign signs with every available key of the role, after checking that
// enough are there.
func (r *Repo) sign(want roleKeys, sign func(signature.Signer) error) error {
	signers, err := r.keys.signers(want)
	if err != nil {
		return err
	}
	for _, s := range signers {
		if err := sign(s); err != nil {
			return fmt.Errorf("sign %s: %w", want.role, err)
		}
	}
	return nil
}

// roleOrder lists the targets roles reachable from targets, each after its
// delegator, so a delegator is signed before the roles it delegates to.
func (r *Repo) roleOrder() []string {
	var order []string
	seen := map[string]bool{}
	var walk func(role string)
	walk = func(role string) {
		if seen[role] || r.roles[role] == nil {
			return
		}
		seen[role] = true
		order = append(order, role)
		if d := r.roles[role].Signed.Delegations; d != nil {
			for _, c := range d.Roles {
				walk(c.Name)
			}
		}
	}
	walk(metadata.TARGETS)
	return order
}

// roleKeysOf is who must sign targets role, per the current root or the
// working copy of its delegator.
func (r *Repo) roleKeysOf(role string) roleKeys {
	if role == metadata.TARGETS {
		return rootRoleKeys(r.root, role)
	}
	rk := roleKeys{role: role}
	if sr := r.succinct(); sr != nil && sr.IsDelegatedRole(role) {
		rk.role = sr.NamePrefix // one key set signs every bin
	}
	if parent, dr := r.delegationOf(role); dr != nil {
		rk.keys = r.roles[parent].Signed.Delegations.Keys
		rk.keyIDs, rk.threshold = dr.KeyIDs, dr.Threshold
	}
	return rk
}

// verifyRole checks md against its delegator: the current root for targets,
// the delegator's working copy (signed earlier in the same Publish) for a
// delegated role.
func (r *Repo) verifyRole(role string, md *metadata.Metadata[metadata.TargetsType]) error {
	if role == metadata.TARGETS {
		return r.root.VerifyDelegate(role, md)
	}
	parent, dr := r.delegationOf(role)
	if dr == nil {
		return fmt.Errorf("role %s is not delegated", role)
	}
	return r.roles[parent].VerifyDelegate(role, md)
}
