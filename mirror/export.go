package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/proxy/cnab"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// TrustRepository is a trust repository as an export needs it
// (*trustfetch.Repository): its verified index, to select by pattern, and
// the verified metadata behind it, to carry.
type TrustRepository interface {
	Index() (*trustfetch.Index, error)
	ExportMetadata(ctx context.Context, dir string) (trustfetch.Versions, error)
}

// ExportOptions says what to export and through which verifying path.
type ExportOptions struct {
	// Source is the proxy every manifest and blob is pulled through.
	Source Source
	// Policy is the engine that proxy uses; it names the target and trust
	// repository behind each reference.
	Policy *policy.Engine
	// Trusts are the trust repositories by configured name.
	Trusts map[string]TrustRepository
	// Recorder, if the policy's trust sources were wrapped with it,
	// supplies the in-toto target files the decisions read.
	Recorder *Recorder
	// References are "<upstream>/<repository>:<tag>" or "…@<digest>".
	References []string
	// Patterns select every tag the trust data of an enforce rule vouches
	// for in a repository matching the pattern (e.g. "docker.io/acme/**");
	// Rules every tag a named rule's trust data vouches for in the
	// repositories it governs. PolicyRules are the configured rules.
	Patterns, Rules []string
	PolicyRules     []policy.Rule
	// Since, if set, is a previous export (directory or tar file): what it
	// carried is left out, and the export can be imported only where that
	// one was.
	Since string
	// Version is the trustproxy version recorded in the export.
	Version string
	Logger  *zap.Logger
	// Progress, if set, is called as bytes are copied and after every
	// file, one call at a time.
	Progress func(Progress)
}

// Progress counts what an export or import has handled so far, and the
// totals once they are known (0: not known yet).
type Progress struct {
	Objects      int   `json:"objects"`
	Bytes        int64 `json:"bytes"`
	TotalObjects int   `json:"totalObjects,omitempty"`
	TotalBytes   int64 `json:"totalBytes,omitempty"`
}

// ExportDir writes an export into directory dir.
func ExportDir(ctx context.Context, dir string, o ExportOptions) (*Index, error) {
	s, err := newDirSink(dir)
	if err != nil {
		return nil, err
	}
	return export(ctx, s, o)
}

// ExportTar writes an export as a tar stream to w.
func ExportTar(ctx context.Context, w io.Writer, o ExportOptions) (*Index, error) {
	s := newTarSink(w)
	ix, err := export(ctx, s, o)
	if err != nil {
		return nil, err
	}
	return ix, s.close()
}

type exporter struct {
	o        ExportOptions
	out      sink
	base     *baseExport // nil: a full export
	mu       sync.Mutex  // guards progress and omitted
	progress Progress
	omitted  map[digest.Digest]bool
	// The plan: what exportRef queued, written by writeContent.
	queued    map[digest.Digest]bool
	blobs     []queuedBlob
	manifests []queuedManifest
}

func export(ctx context.Context, out sink, o ExportOptions) (*Index, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	x := &exporter{o: o, out: out, omitted: map[digest.Digest]bool{}, queued: map[digest.Digest]bool{}}
	selected, err := x.selectRefs()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	refs := append(append([]string{}, o.References...), selected...)
	if len(refs) == 0 {
		return nil, fmt.Errorf("export: no references, patterns or rules given")
	}
	ix := &Index{Format: formatV1, Writer: o.Version, Trust: map[string]trustfetch.Versions{}}
	if o.Since != "" {
		b, err := readBase(o.Since)
		if err != nil {
			return nil, err
		}
		x.base, ix.Since = b, &b.Base
	}
	var roots []ocispec.Descriptor
	exported := map[string]bool{}
	for _, ref := range refs {
		if exported[ref] {
			continue
		}
		exported[ref] = true
		e, err := x.exportRef(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", ref, err)
		}
		ix.Entries = append(ix.Entries, e)
		roots = append(roots, ocispec.Descriptor{MediaType: e.MediaType, Digest: e.Digest, Size: e.Size,
			Annotations: map[string]string{ocispec.AnnotationRefName: e.Reference, "io.containerd.image.name": e.Reference}})
		ix.Trust[e.Trust] = trustfetch.Versions{}
	}
	if err := x.writeContent(ctx); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	for dg := range x.omitted {
		ix.Omitted = append(ix.Omitted, dg)
	}
	sort.Slice(ix.Omitted, func(i, j int) bool { return ix.Omitted[i] < ix.Omitted[j] })
	atts, attDescs, err := x.exportAttachments(ctx, ix.Entries)
	if err != nil {
		return nil, err
	}
	ix.Attachments, roots = atts, append(roots, attDescs...)
	if err := x.writeTrust(ctx, ix); err != nil {
		return nil, err
	}
	if err := x.putJSON(layoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}); err != nil {
		return nil, err
	}
	oix := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: roots}
	oix.SchemaVersion = 2
	if err := x.putJSON(ociIndex, oix); err != nil {
		return nil, err
	}
	if err := x.putJSON(indexFile, ix); err != nil {
		return nil, err
	}
	return ix, nil
}

// exportRef decides one reference, pulls its manifests through the proxy
// and queues its tree (planTree).
func (x *exporter) exportRef(ctx context.Context, ref string) (Entry, error) {
	subj, err := parseRef(ref)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Reference: ref}
	want := subj.Tag
	if subj.Tag != "" {
		d := x.o.Policy.ResolveTag(ctx, subj)
		if !d.Allowed || d.Mode != policy.ModeEnforce {
			return e, notVouched(d, subj)
		}
		e.Target, e.Trust = d.Target, d.Trust
	} else {
		want = subj.Digest.String()
	}
	mt, body, err := x.o.Source.Manifest(ctx, subj.Upstream, subj.Repository, want)
	if err != nil {
		return e, err
	}
	e.Digest, e.Size = digest.FromBytes(body), int64(len(body))
	e.MediaType = mediaTypeOf(body, mt)
	if subj.Digest != "" && e.Digest != subj.Digest {
		return e, fmt.Errorf("the proxy served %s", e.Digest)
	}
	if cnab.IsBundle(mt, body) {
		e.Bundle = true
	} else if subj.Digest != "" {
		d := x.o.Policy.CheckManifest(ctx, subj, e.Digest, e.MediaType, body)
		if !d.Allowed || d.Mode != policy.ModeEnforce || d.Reason != "" {
			return e, notVouched(d, subj)
		}
		e.Target, e.Trust = d.Target, d.Trust
	}
	if e.Trust == "" {
		r := x.o.Policy.Rule(subj.Upstream, subj.Repository)
		if r == nil || r.Mode != policy.ModeEnforce {
			return e, fmt.Errorf("no enforce rule governs %s/%s: only content trust data vouches for is exported", subj.Upstream, subj.Repository)
		}
		e.Trust = r.Trust
	}
	if x.omit(e.Digest) {
		return e, nil
	}
	if err := x.planTree(ctx, subj, e.Digest, body); err != nil {
		return e, err
	}
	return e, nil
}

// omit reports whether the base export carried dg (and with a manifest,
// its whole tree), noting it as omitted.
func (x *exporter) omit(dg digest.Digest) bool {
	if x.base == nil || !x.base.has[dg] {
		return false
	}
	x.mu.Lock()
	x.omitted[dg] = true
	x.mu.Unlock()
	return true
}

func notVouched(d policy.Decision, subj policy.Subject) error {
	if !d.Allowed {
		return fmt.Errorf("%s", d.Message(subj))
	}
	return fmt.Errorf("rule %q is mode %s: only content trust data vouches for (mode enforce) is exported", d.Rule, d.Mode)
}

// planTree records a manifest and, depth first, everything it references:
// child manifests are pulled through the proxy now (they are small, and
// the proxy serves them only under the root's approval), blobs are queued
// for copyBlobs. Manifests are written children first, after the blobs.
func (x *exporter) planTree(ctx context.Context, subj policy.Subject, dg digest.Digest, body []byte) error {
	refs, err := references(body)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", dg, err)
	}
	for _, c := range refs.manifests {
		if x.queued[c.Digest] || x.out.has(blobName(c.Digest)) || x.omit(c.Digest) {
			continue
		}
		_, cb, err := x.o.Source.Manifest(ctx, subj.Upstream, subj.Repository, c.Digest.String())
		if err != nil {
			return err
		}
		if got := digest.FromBytes(cb); got != c.Digest || int64(len(cb)) != c.Size {
			return fmt.Errorf("manifest %s: the proxy served %s (%d bytes)", c.Digest, got, len(cb))
		}
		if err := x.planTree(ctx, subj, c.Digest, cb); err != nil {
			return err
		}
	}
	for _, b := range refs.blobs {
		if !x.queued[b.Digest] && !x.out.has(blobName(b.Digest)) && !x.omit(b.Digest) {
			x.queued[b.Digest] = true
			x.blobs = append(x.blobs, queuedBlob{subj, b})
			x.progress.TotalObjects++
			x.progress.TotalBytes += b.Size
		}
	}
	if !x.queued[dg] {
		x.queued[dg] = true
		x.manifests = append(x.manifests, queuedManifest{dg, body})
		x.progress.TotalObjects++
		x.progress.TotalBytes += int64(len(body))
	}
	return nil
}

// queuedBlob is a blob to copy, with the reference whose approval the
// proxy serves it under.
type queuedBlob struct {
	subj policy.Subject
	desc ocispec.Descriptor
}

type queuedManifest struct {
	digest digest.Digest
	body   []byte
}

// writeContent copies every queued blob, concurrently where the sink
// allows it (a directory; a tar stream takes them one after the other)
// and across all references, then writes the manifests.
func (x *exporter) writeContent(ctx context.Context) error {
	if x.out.parallel() == 1 {
		if err := x.copyBlobsInOrder(ctx); err != nil {
			return err
		}
		return x.writeManifests()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(x.out.parallel())
	for _, b := range x.blobs {
		g.Go(func() error { return x.copyBlob(gctx, b.subj, b.desc) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return x.writeManifests()
}

func (x *exporter) writeManifests() error {
	for _, m := range x.manifests {
		if err := x.put(blobName(m.digest), int64(len(m.body)), bytes.NewReader(m.body)); err != nil {
			return err
		}
	}
	return nil
}

// copyBlob streams one blob from the proxy into the export, checking its
// digest on the way (the proxy already did; this guards the copy).
func (x *exporter) copyBlob(ctx context.Context, subj policy.Subject, d ocispec.Descriptor) error {
	rc, err := x.o.Source.Blob(ctx, subj.Upstream, subj.Repository, d.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	return x.writeBlob(d, rc)
}

// writeBlob writes an opened blob body into the export.
func (x *exporter) writeBlob(d ocispec.Descriptor, rc io.Reader) error {
	v := d.Digest.Verifier()
	if err := x.out.put(blobName(d.Digest), d.Size, io.TeeReader(&countingReader{r: rc, x: x}, v)); err != nil {
		return err
	}
	if !v.Verified() {
		return fmt.Errorf("blob %s: bytes do not match the digest", d.Digest)
	}
	x.report(0, 1)
	return nil
}

// countingReader reports a blob's bytes as they are copied, so that
// progress moves within a large layer.
type countingReader struct {
	r io.Reader
	x *exporter
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.x.report(int64(n), 0)
	}
	return n, err
}

func (x *exporter) put(name string, size int64, r io.Reader) error {
	if err := x.out.put(name, size, r); err != nil {
		return err
	}
	x.report(size, 1)
	return nil
}

// report adds to the progress and tells the caller's Progress.
func (x *exporter) report(bytes int64, objects int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.progress.Bytes += bytes
	x.progress.Objects += objects
	if x.o.Progress != nil {
		x.o.Progress(x.progress)
	}
}

func (x *exporter) putJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return x.put(name, int64(len(b)), bytes.NewReader(b))
}

// writeTrust adds, per trust repository used, its metadata and the target
// files policy read.
func (x *exporter) writeTrust(ctx context.Context, ix *Index) error {
	names := make([]string, 0, len(ix.Trust))
	for n := range ix.Trust {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		tr := x.o.Trusts[name]
		if tr == nil {
			return fmt.Errorf("export: trust repository %q is not configured", name)
		}
		tmp, err := os.MkdirTemp("", "trustproxy-export-tuf-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		v, err := tr.ExportMetadata(ctx, tmp)
		if err != nil {
			return err
		}
		ix.Trust[name] = v
		files, err := os.ReadDir(tmp)
		if err != nil {
			return err
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(tmp, f.Name()))
			if err != nil {
				return err
			}
			if err := x.put(path.Join(tufDir, name, "metadata", f.Name()), int64(len(b)), bytes.NewReader(b)); err != nil {
				return err
			}
		}
		if x.o.Recorder == nil {
			continue
		}
		targets := x.o.Recorder.targets(name)
		paths := make([]string, 0, len(targets))
		for p := range targets {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			rel, err := url.PathUnescape(p)
			if err != nil {
				return err
			}
			b := targets[p]
			if err := x.put(path.Join(tufDir, name, "targets", rel), int64(len(b)), bytes.NewReader(b)); err != nil {
				return err
			}
		}
	}
	return nil
}

func blobName(d digest.Digest) string { return blobsDir + "/" + d.Encoded() }
