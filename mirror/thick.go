package mirror

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/proxy/cnab"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// A CNAB thick bundle (spec 104; what `porter archive` writes) is a gzipped
// tar holding bundle.json, porter's relocation-mapping.json and, under
// artifacts/layout/, an OCI image layout of the invocation and component
// images. It carries no TUF metadata and neither of the thin bundle's
// registry objects, so ImportThick turns it into an export of one bundle
// reference: the images verified against bundle.json's contentDigests,
// the config manifest and index rebuilt around the archive's bundle.json
// (thickindex.go), and the trust data this side holds (or a trust
// repository directory carried with the archive). From there the export's
// import path decides, exactly as for `mirror export` output: this side's
// pinned root and state, this side's policy, and all or nothing.

// Paths inside a thick bundle.
const (
	thickBundleJSON = "bundle.json"
	thickLayout     = "artifacts/layout"
)

// ThickOptions says what a thick bundle is to the importing side.
type ThickOptions struct {
	// Reference is the bundle's tagged reference as the proxy serves it
	// (<upstream>/<repository>:<tag>): the archive does not record it.
	Reference string
	// TrustDirs maps a trust repository name to a directory carried with
	// the archive that holds its metadata/ (and targets/): a copy of the
	// publisher's repository or an export's tuf/<name>. Trust repositories
	// not named here are verified from this side's own directories.
	TrustDirs map[string]string
}

// IsThickBundle reports whether a stream starts like a thick bundle (a
// gzip stream) rather than an export (a plain tar stream).
func IsThickBundle(r *bufio.Reader) bool {
	b, err := r.Peek(2)
	return err == nil && b[0] == 0x1f && b[1] == 0x8b
}

// ImportThick verifies a CNAB thick bundle and loads it so that an offline
// proxy serves Reference as if the bundle had been pulled from upstream.
func ImportThick(ctx context.Context, r io.Reader, t ThickOptions, o ImportOptions) (*ImportResult, error) {
	subj, err := parseRef(t.Reference)
	if err != nil {
		return nil, fmt.Errorf("thick bundle: %w", err)
	}
	if subj.Tag == "" {
		return nil, fmt.Errorf("thick bundle: reference %q: name the tag the bundle is served as (<upstream>/<repository>:<tag>)", t.Reference)
	}
	for name := range t.TrustDirs {
		it, ok := o.Trusts[name]
		if !ok {
			return nil, fmt.Errorf("thick bundle: trust repository %q is not configured on this side", name)
		}
		if it.Metadata == "" {
			return nil, fmt.Errorf("thick bundle: trust %s: this side must read it from local directories (metadata, targets) for an import to update it", name)
		}
	}
	dir, err := os.MkdirTemp(o.WorkDir, "trustproxy-thick-")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(dir)
	layout, present, err := stageThick(r, dir, t, o)
	if err != nil {
		return nil, fmt.Errorf("import refused, nothing loaded: %w", err)
	}
	return importDir(ctx, layout, present, o)
}

// stageThick unpacks the archive into dir, checks every image against
// bundle.json, and writes an export of the one bundle reference into the
// archive's layout directory, which it returns with its verified blobs.
func stageThick(r io.Reader, dir string, t ThickOptions, o ImportOptions) (string, map[digest.Digest]bool, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return "", nil, fmt.Errorf("read thick bundle: %w (a thick bundle is a gzipped tar)", err)
	}
	if _, err := extractTar(gz, dir); err != nil {
		return "", nil, fmt.Errorf("read thick bundle: %w", err)
	}
	// The tar ends before the gzip trailer; reading on checks its CRC.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return "", nil, fmt.Errorf("read thick bundle: %w (truncated or corrupt)", err)
	}
	layout := filepath.Join(dir, filepath.FromSlash(thickLayout))
	if fi, err := os.Stat(filepath.Join(layout, ociIndex)); err != nil || !fi.Mode().IsRegular() {
		return "", nil, fmt.Errorf("%s/%s: missing (not a CNAB thick bundle?)", thickLayout, ociIndex)
	}
	if err := checkThickLayoutFiles(layout); err != nil {
		return "", nil, err
	}
	present, err := checkBlobs(layout, nil)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", thickLayout, err)
	}
	bundleJSON, err := readBounded(filepath.Join(dir, thickBundleJSON), cnab.MaxBundleJSONSize)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", thickBundleJSON, err)
	}
	var b thickBundle
	if err := json.Unmarshal(bundleJSON, &b); err != nil {
		return "", nil, fmt.Errorf("%s: %w", thickBundleJSON, err)
	}
	parts, err := b.parts()
	if err != nil {
		return "", nil, err
	}
	rd := layoutReader{dir: layout}
	named := map[digest.Digest]bool{}
	for _, p := range parts {
		if err := checkPart(rd, present, p); err != nil {
			return "", nil, err
		}
		named[p.digest] = true
	}
	if err := checkThickIndex(layout, named); err != nil {
		return "", nil, err
	}
	thin, err := rebuildThin(&b, bundleJSON, parts)
	if err != nil {
		return "", nil, fmt.Errorf("rebuild the bundle's index: %w", err)
	}
	for _, blob := range [][]byte{bundleJSON, thin.configManifest, thin.index} {
		if err := putBlob(layout, blob); err != nil {
			return "", nil, err
		}
		present[digest.FromBytes(blob)] = true
	}
	trusts, err := stageTrust(layout, t, o)
	if err != nil {
		return "", nil, err
	}
	entry := Entry{Reference: t.Reference, Digest: digest.FromBytes(thin.index), MediaType: ocispec.MediaTypeImageIndex,
		Size: int64(len(thin.index)), Bundle: true}
	ix := Index{Format: formatV1, Writer: "trustproxy mirror import (CNAB thick bundle)", Entries: []Entry{entry}, Trust: trusts}
	oix := ocispec.Index{Versioned: ocispecs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{MediaType: entry.MediaType, Digest: entry.Digest, Size: entry.Size,
			Annotations: map[string]string{ocispec.AnnotationRefName: t.Reference}}}}
	for name, v := range map[string]any{indexFile: ix, ociIndex: oix} {
		body, err := json.Marshal(v)
		if err == nil {
			err = os.WriteFile(filepath.Join(layout, name), body, 0o644)
		}
		if err != nil {
			return "", nil, fmt.Errorf("stage %s: %w", name, err)
		}
	}
	return layout, present, nil
}

// checkPart requires the archive to hold the image bundle.json pins, as
// bundle.json describes it (size, media type). Its bytes hash to the
// digest already (checkBlobs); its children are checked by the import's
// walk.
func checkPart(rd layoutReader, present map[digest.Digest]bool, p thickPart) error {
	if !present[p.digest] {
		return fmt.Errorf("%s: image %s (bundle.json contentDigest) is not in the archive", p.label, p.digest)
	}
	_, body, err := rd.Manifest(context.Background(), p.digest)
	if err != nil {
		return fmt.Errorf("%s: %w", p.label, err)
	}
	if int64(len(body)) != int64(p.img.Size) {
		return fmt.Errorf("%s: the archive's manifest %s has %d bytes; bundle.json says %d", p.label, p.digest, len(body), p.img.Size)
	}
	if mt := mediaTypeOf(body, p.mediaTy); mt != p.mediaTy {
		return fmt.Errorf("%s: the archive's manifest %s is a %s; bundle.json says %s", p.label, p.digest, mt, p.mediaTy)
	}
	return nil
}

// checkThickIndex refuses a layout whose index.json names an image
// bundle.json does not: porter writes exactly the bundle's images.
func checkThickIndex(layout string, named map[digest.Digest]bool) error {
	body, err := readBounded(filepath.Join(layout, ociIndex), maxManifestBytes)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", thickLayout, ociIndex, err)
	}
	var ix ocispec.Index
	if err := json.Unmarshal(body, &ix); err != nil {
		return fmt.Errorf("%s/%s: %w", thickLayout, ociIndex, err)
	}
	for _, d := range ix.Manifests {
		if !named[d.Digest] {
			return fmt.Errorf("%s/%s lists %s (%q), which bundle.json does not name (an unsigned addition?)",
				thickLayout, ociIndex, d.Digest, d.Annotations[ocispec.AnnotationRefName])
		}
	}
	return nil
}

// checkThickLayoutFiles refuses a layout holding anything but an OCI image
// layout: the import stages its trust data and table of contents there, and
// nothing the archive brings may pass for them.
func checkThickLayoutFiles(layout string) error {
	ents, err := os.ReadDir(layout)
	if err != nil {
		return fmt.Errorf("%s: %w", thickLayout, err)
	}
	for _, e := range ents {
		switch {
		case e.Name() == layoutFile && e.Type().IsRegular(), e.Name() == ociIndex && e.Type().IsRegular(), e.Name() == "blobs" && e.IsDir():
		default:
			return fmt.Errorf("%s/%s: not part of an OCI image layout, which is all a thick bundle's %s holds", thickLayout, e.Name(), thickLayout)
		}
	}
	return nil
}

// putBlob writes a small blob into the layout under its digest.
func putBlob(layout string, b []byte) error {
	p := layoutReader{dir: layout}.path(digest.FromBytes(b))
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// stageTrust copies into layout/tuf/<name> the trust data the import
// verifies against: each directory carried with the archive, and the trust
// repository of the rule that governs the bundle from this side's own
// (local) directories unless one was carried for it. Other trust
// repositories of this side play no part, so their state cannot fail the
// import.
func stageTrust(layout string, t ThickOptions, o ImportOptions) (map[string]trustfetch.Versions, error) {
	need := map[string]bool{}
	for n := range t.TrustDirs {
		need[n] = true
	}
	if n := governingTrust(t.Reference, o); n != "" {
		need[n] = true
	}
	out := map[string]trustfetch.Versions{}
	names := make([]string, 0, len(need))
	for n := range need {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		meta, targets := o.Trusts[name].Metadata, o.Trusts[name].Targets
		if d, ok := t.TrustDirs[name]; ok {
			meta, targets = filepath.Join(d, "metadata"), filepath.Join(d, "targets")
			if _, err := os.Stat(filepath.Join(meta, "timestamp.json")); err != nil {
				return nil, fmt.Errorf("trust %s: %s holds no metadata/timestamp.json (a TUF repository directory is expected)", name, d)
			}
		}
		if meta == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(meta, "timestamp.json")); err != nil {
			continue
		}
		dst := filepath.Join(layout, tufDir, name)
		if err := copyDir(meta, filepath.Join(dst, "metadata")); err != nil {
			return nil, fmt.Errorf("trust %s: %w", name, err)
		}
		if targets != "" {
			if err := copyDir(targets, filepath.Join(dst, "targets")); err != nil {
				return nil, fmt.Errorf("trust %s: %w", name, err)
			}
		}
		out[name] = trustfetch.Versions{}
	}
	return out, nil
}

// governingTrust is the trust repository this side's policy consults for
// ref ("" if none: the import then refuses it).
func governingTrust(ref string, o ImportOptions) string {
	subj, err := parseRef(ref)
	if err != nil {
		return ""
	}
	sources := map[string]policy.TrustSource{}
	for n := range o.Trusts {
		sources[n] = absentTrust(n)
	}
	e, err := policy.New(o.Policy, sources, policy.Options{Logger: o.Logger})
	if err != nil {
		return ""
	}
	if r := e.Rule(subj.Upstream, subj.Repository); r != nil {
		if _, ok := o.Trusts[r.Trust]; ok {
			return r.Trust
		}
	}
	return ""
}
