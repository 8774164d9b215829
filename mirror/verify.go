package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/proxy/cnab"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// plan is a verified export: what commit loads.
type plan struct {
	entries   []Entry
	manifests map[digest.Digest]string // digest → media type
	order     []digest.Digest          // manifests, children before parents
	blobs     map[digest.Digest]int64
	trusts    []string
	// rd reads the export (and, for an incremental one, this side's cache).
	rd layoutReader
	// reused counts what an incremental export omits and this side holds.
	reused map[digest.Digest]bool
	// index is the export's trustproxy-mirror.json, recorded once loaded.
	index []byte
	// attachments are the verified attachments (attach.go), attached
	// their digests.
	attachments []Attachment
	attached    map[digest.Digest]bool
}

// verify checks the whole export in dir and returns what to load; it
// changes nothing outside work. Each check names the first failure.
func verify(ctx context.Context, dir string, verified map[digest.Digest]bool, work string, o ImportOptions) (*plan, error) {
	ix, oix, raw, err := readLayout(dir)
	if err != nil {
		return nil, err
	}
	if err := checkBase(ix, o.StateDir); err != nil {
		return nil, err
	}
	present, err := checkBlobs(dir, verified)
	if err != nil {
		return nil, err
	}
	engine, err := stagedPolicy(ctx, dir, ix, work, o)
	if err != nil {
		return nil, err
	}
	p := &plan{entries: ix.Entries, manifests: map[digest.Digest]string{}, blobs: map[digest.Digest]int64{},
		rd: layoutReader{dir: dir}, reused: map[digest.Digest]bool{}, index: raw}
	if ix.Since != nil {
		p.rd.cache = o.Cache
	}
	for n := range ix.Trust {
		p.trusts = append(p.trusts, n)
	}
	sort.Strings(p.trusts)
	rd := p.rd
	roots := map[string]bool{}
	for _, e := range ix.Entries {
		if err := checkEntry(ctx, engine, rd, e); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Reference, err)
		}
		roots[e.Reference+"@"+e.Digest.String()] = true
		if err := p.walk(rd, e.Digest, e.MediaType); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Reference, err)
		}
	}
	if err := p.verifyAttachments(ctx, engine, rd, ix); err != nil {
		return nil, err
	}
	for _, d := range oix.Manifests {
		if !roots[d.Annotations[ocispec.AnnotationRefName]+"@"+d.Digest.String()] && !p.listedAttachment(d) {
			return nil, fmt.Errorf("index.json lists %s (%q), which no verified entry of %s names", d.Digest, d.Annotations[ocispec.AnnotationRefName], indexFile)
		}
	}
	for dg := range present {
		if _, ok := p.blobs[dg]; ok {
			continue
		}
		if _, ok := p.manifests[dg]; !ok {
			return nil, fmt.Errorf("blob %s is in the export but no approved manifest references it (an unsigned addition?)", dg)
		}
	}
	return p, nil
}

// checkBlobs hashes every blob not already verified while unpacking.
func checkBlobs(dir string, verified map[digest.Digest]bool) (map[digest.Digest]bool, error) {
	files, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(blobsDir)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // an incremental export may carry no blob
		return nil, fmt.Errorf("%s: %w", blobsDir, err)
	}
	present := map[digest.Digest]bool{}
	for _, f := range files {
		dg, err := blobDigest(f.Name())
		if err != nil {
			return nil, err
		}
		if !f.Type().IsRegular() {
			return nil, fmt.Errorf("blob %s is not a regular file", dg)
		}
		present[dg] = true
		if verified[dg] {
			continue
		}
		fh, err := os.Open(filepath.Join(dir, filepath.FromSlash(blobsDir), f.Name()))
		if err != nil {
			return nil, err
		}
		v := digest.SHA256.Digester()
		_, err = io.Copy(v.Hash(), fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", dg, err)
		}
		if got := v.Digest(); got != dg {
			return nil, fmt.Errorf("blob %s: content hashes to %s (tampered or corrupt)", dg, got)
		}
	}
	return present, nil
}

// stagedPolicy verifies each trust repository's metadata in the export
// against this side's pinned root, starting from a copy of this side's
// persisted state (so a rollback below it fails), and builds this side's
// policy over the result.
func stagedPolicy(ctx context.Context, dir string, ix *Index, work string, o ImportOptions) (*policy.Engine, error) {
	sources := map[string]policy.TrustSource{}
	names := make([]string, 0, len(o.Trusts))
	for n := range o.Trusts {
		names = append(names, n)
	}
	sort.Strings(names)
	for n := range ix.Trust {
		if _, ok := o.Trusts[n]; !ok {
			return nil, fmt.Errorf("the export carries trust repository %q, which this side does not configure", n)
		}
	}
	for _, name := range names {
		t := o.Trusts[name]
		if _, ok := ix.Trust[name]; !ok {
			sources[name] = absentTrust(name)
			continue
		}
		state := filepath.Join(work, "state", name)
		if err := copyDir(filepath.Join(t.StateDir, "metadata"), filepath.Join(state, "metadata")); err != nil {
			return nil, fmt.Errorf("trust %s: copy this side's state: %w", name, err)
		}
		repo, err := trustfetch.Open(ctx, trustfetch.Config{
			Name: name, Root: t.Root, StateDir: state,
			Metadata:        filepath.Join(dir, tufDir, name, "metadata"),
			Targets:         filepath.Join(dir, tufDir, name, "targets"),
			AllowExpiredFor: t.AllowExpiredFor,
		}, trustfetch.Options{Logger: o.Logger, Now: o.Now})
		if err != nil {
			return nil, fmt.Errorf("trust %s: %w", name, err)
		}
		defer repo.Close()
		if _, err := repo.Index(); err != nil {
			var ue *trustfetch.UnavailableError
			if errors.As(err, &ue) && ue.LastRefresh != nil {
				return nil, fmt.Errorf("trust %s: the export's TUF metadata does not verify against this side's pinned root and state: %w", name, ue.LastRefresh)
			}
			return nil, fmt.Errorf("trust %s: %w", name, err)
		}
		sources[name] = repo
	}
	return policy.New(o.Policy, sources, policy.Options{Logger: o.Logger, Now: o.Now})
}

// checkEntry asks this side's policy about one exported reference, with
// the manifest bytes in the export as the subject.
func checkEntry(ctx context.Context, engine *policy.Engine, rd layoutReader, e Entry) error {
	subj, err := parseRef(e.Reference)
	if err != nil {
		return err
	}
	if subj.Digest != "" && subj.Digest != e.Digest {
		return fmt.Errorf("entry digest %s differs from the reference", e.Digest)
	}
	_, body, err := rd.Manifest(ctx, e.Digest)
	if err != nil {
		return err
	}
	var d policy.Decision
	if cnab.IsBundle(e.MediaType, body) {
		b, err := cnab.Resolve(ctx, rd, e.Digest, e.MediaType, body)
		if err != nil {
			return fmt.Errorf("CNAB bundle: %w", err)
		}
		d = engine.CheckBundle(ctx, subj, policy.Bundle{
			Index:      policy.Artifact{Digest: b.Index.Digest, Length: b.Index.Size},
			BundleJSON: policy.Artifact{Digest: b.BundleDigest, Length: int64(len(b.BundleJSON))},
			Binds: func(subject string) error {
				if subject == "index" {
					return b.CheckBinding(cnab.SubjectIndex)
				}
				return b.CheckBinding(cnab.SubjectBundleJSON)
			},
		})
	} else {
		d = engine.CheckManifest(ctx, subj, e.Digest, e.MediaType, body)
	}
	if !d.Allowed {
		return fmt.Errorf("%s", d.Message(subj))
	}
	if d.Reason != "" {
		return fmt.Errorf("this side's rule %q (mode %s) would not serve it: %s", d.Rule, d.Mode, d.Reason)
	}
	return nil
}

// walk records a verified root's tree: every child manifest and blob must
// be in the export.
func (p *plan) walk(rd layoutReader, dg digest.Digest, mediaType string) error {
	if _, done := p.manifests[dg]; done {
		return nil
	}
	_, body, err := rd.Manifest(context.Background(), dg)
	if err != nil {
		return err
	}
	refs, err := references(body)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", dg, err)
	}
	for _, c := range refs.manifests {
		if err := p.walk(rd, c.Digest, c.MediaType); err != nil {
			return err
		}
	}
	for _, b := range refs.blobs {
		size, err := rd.size(b.Digest)
		if err != nil {
			return fmt.Errorf("manifest %s references blob %s: %w", dg, b.Digest, err)
		}
		if size != b.Size {
			return fmt.Errorf("blob %s has %d bytes; manifest %s says %d", b.Digest, size, dg, b.Size)
		}
		if !rd.inLayout(b.Digest) {
			p.reused[b.Digest] = true
			continue
		}
		p.blobs[b.Digest] = size
	}
	if !rd.inLayout(dg) {
		p.reused[dg] = true
	}
	p.manifests[dg] = mediaTypeOf(body, mediaType)
	p.order = append(p.order, dg)
	return nil
}

// absentTrust is a trust repository this side configures but the export
// does not carry: it vouches for nothing in this import.
type absentTrust string

func (a absentTrust) Name() string { return string(a) }
func (a absentTrust) Index() (*trustfetch.Index, error) {
	return nil, fmt.Errorf("trust repository %q: not in this export", string(a))
}
func (a absentTrust) FetchTarget(context.Context, trustfetch.Target) ([]byte, error) {
	return nil, fmt.Errorf("trust repository %q: not in this export", string(a))
}
