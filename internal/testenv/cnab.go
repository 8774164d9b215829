package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"

	"github.com/cnabio/cnab-go/bundle"
	"github.com/cnabio/cnab-to-oci/converter"
	"github.com/cnabio/cnab-to-oci/relocation"
	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	distref "github.com/distribution/reference"
	docker "github.com/docker/distribution"
	"github.com/docker/distribution/manifest/schema2"
	dockerref "github.com/docker/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BundleForm is the shape cnab-to-oci's push fallbacks give a bundle
// (research/cnab-formats.md §2.5).
type BundleForm int

const (
	// BundleOCI is the first choice: an OCI index, and an OCI config
	// manifest whose config is bundle.json typed application/vnd.cnab.config.v1+json.
	BundleOCI BundleForm = iota
	// BundleOCIImageConfig is the second config fallback: the same, with
	// bundle.json typed as an OCI image config.
	BundleOCIImageConfig
	// BundleDockerConfig is the last config fallback: a Docker schema2
	// config manifest (3-space indented) whose config and only layer are
	// bundle.json, typed as a Docker container config.
	BundleDockerConfig
	// BundleDockerManifestList is the index fallback: the CNAB index written
	// as a Docker manifest list (a trailing "mediaType" field).
	BundleDockerManifestList
)

func (f BundleForm) String() string {
	switch f {
	case BundleOCI:
		return "oci"
	case BundleOCIImageConfig:
		return "oci-image-config"
	case BundleDockerConfig:
		return "docker-config-manifest"
	case BundleDockerManifestList:
		return "docker-manifest-list"
	}
	return fmt.Sprintf("BundleForm(%d)", int(f))
}

// BundleOption changes a bundle push, to build the broken bundles tests
// must refuse.
type BundleOption func(*bundlePush)

type bundlePush struct {
	editBundle func(*bundle.Bundle)
	editJSON   func([]byte) []byte
	editIndex  func(*ocispec.Index)
}

// EditBundle edits the bundle after the images were pushed and their
// contentDigest, size and mediaType filled in, before cnab-to-oci builds the
// config and index from it. (cnab-to-oci takes descriptor size and media
// type from the bundle, so editing those changes both sides; EditIndex
// makes them disagree.)
func EditBundle(f func(*bundle.Bundle)) BundleOption {
	return func(p *bundlePush) { p.editBundle = f }
}

// EditBundleJSON replaces the serialised bundle.json; the config manifest is
// then built around the new bytes the way cnab-to-oci's PrepareForPush does.
func EditBundleJSON(f func([]byte) []byte) BundleOption {
	return func(p *bundlePush) { p.editJSON = f }
}

// EditIndex edits the index cnab-to-oci built before it is serialised.
func EditIndex(f func(*ocispec.Index)) BundleOption {
	return func(p *bundlePush) { p.editIndex = f }
}

// PushedBundle is what PushBundle wrote.
type PushedBundle struct {
	// Ref is the tag the index was pushed to.
	Ref name.Reference
	// Bundle is the bundle as pushed, images filled in.
	Bundle *bundle.Bundle

	Index          []byte
	IndexDigest    digest.Digest
	IndexMediaType string

	ConfigManifest          []byte
	ConfigManifestDigest    digest.Digest
	ConfigManifestMediaType string

	BundleJSON      []byte
	BundleDigest    digest.Digest
	BundleMediaType string

	// Invocation is the invocation image's manifest digest; Components
	// are the component images' by component name.
	Invocation digest.Digest
	Components map[string]digest.Digest
}

// SampleBundle is a bundle with an invocation image (Docker manifest) and
// two components: "db" (OCI manifest) and "web" (a multi-arch OCI index).
// PushBundle pushes random images for them.
func SampleBundle() *bundle.Bundle {
	return &bundle.Bundle{
		SchemaVersion: "v1.2.0",
		Name:          "sample",
		Version:       "0.1.0",
		Description:   "trustproxy test bundle",
		Keywords:      []string{"trustproxy", "test"},
		Maintainers:   []bundle.Maintainer{{Name: "Test", Email: "test@example.com"}},
		InvocationImages: []bundle.InvocationImage{{BaseImage: bundle.BaseImage{
			ImageType: "docker", Image: "example.com/acme/sample-installer:0.1.0",
		}}},
		Images: map[string]bundle.Image{
			"db": {BaseImage: bundle.BaseImage{ImageType: "oci", Image: "example.com/acme/db:15"}, Description: "database"},
			"web": {BaseImage: bundle.BaseImage{
				ImageType: "oci", Image: "example.com/acme/web:1.4.2", MediaType: string(types.OCIImageIndex),
			}, Description: "web frontend"},
		},
		Actions: map[string]bundle.Action{"status": {Modifies: false, Description: "report status"}},
	}
}

// PushBundle pushes b the way cnab-to-oci does: a random image for the
// invocation image and each component, by digest into the bundle's
// repository (what fixup does, with porter's auto-update filling in
// contentDigest, size and mediaType); then bundle.json, the config manifest
// and the index built by cnab-to-oci's converter package, written byte for
// byte with go-containerregistry. b is not modified.
func (r *Registry) PushBundle(t testing.TB, repoAndTag string, b *bundle.Bundle, form BundleForm, opts ...BundleOption) PushedBundle {
	t.Helper()
	var p bundlePush
	for _, o := range opts {
		o(&p)
	}
	ref := r.Ref(t, repoAndTag)
	repo := ref.Context()
	b = copyBundle(b)
	out := PushedBundle{Ref: ref, Bundle: b, Components: map[string]digest.Digest{}}

	reloc := relocation.ImageRelocationMap{}
	if len(b.InvocationImages) == 0 {
		t.Fatalf("push bundle %s: no invocation image", repoAndTag)
	}
	for i := range b.InvocationImages {
		d := r.pushBundleImage(t, repo, &b.InvocationImages[i].BaseImage)
		reloc[b.InvocationImages[i].Image] = repo.Name() + "@" + d.String()
		if i == 0 {
			out.Invocation = d
		}
	}
	for n, img := range b.Images {
		d := r.pushBundleImage(t, repo, &img.BaseImage)
		b.Images[n] = img
		reloc[img.Image] = repo.Name() + "@" + d.String()
		out.Components[n] = d
	}
	if p.editBundle != nil {
		p.editBundle(b)
	}

	cfg := prepareBundleConfig(t, b, form, p.editJSON)
	if err := remote.WriteLayer(repo, static.NewLayer(cfg.ConfigBlob, types.MediaType(cfg.ConfigBlobDescriptor.MediaType))); err != nil {
		t.Fatalf("push bundle.json to %s: %v", repo, err)
	}
	r.putManifest(t, repo.Digest(cfg.ManifestDescriptor.Digest.String()), cfg.Manifest, cfg.ManifestDescriptor.MediaType)
	out.BundleJSON, out.BundleDigest, out.BundleMediaType = cfg.ConfigBlob, cfg.ConfigBlobDescriptor.Digest, cfg.ConfigBlobDescriptor.MediaType
	out.ConfigManifest, out.ConfigManifestDigest, out.ConfigManifestMediaType = cfg.Manifest, cfg.ManifestDescriptor.Digest, cfg.ManifestDescriptor.MediaType

	target, err := dockerref.ParseNormalizedNamed(ref.Name())
	if err != nil {
		t.Fatalf("parse %s: %v", ref, err)
	}
	ix, err := converter.ConvertBundleToOCIIndex(b, target, cfg.ManifestDescriptor, reloc)
	if err != nil {
		t.Fatalf("convert bundle to index: %v", err)
	}
	if p.editIndex != nil {
		p.editIndex(ix)
	}
	out.IndexMediaType = ocispec.MediaTypeImageIndex
	if form == BundleDockerManifestList {
		// cnab-to-oci's remotes.ociIndexWrapper: the wrapper's mediaType
		// shadows the embedded one and is encoded last.
		w := struct {
			ocispec.Index
			MediaType string `json:"mediaType,omitempty"`
		}{Index: *ix, MediaType: string(types.DockerManifestList)}
		out.Index, err = json.Marshal(w)
		out.IndexMediaType = string(types.DockerManifestList)
	} else {
		out.Index, err = json.Marshal(ix)
	}
	if err != nil {
		t.Fatalf("marshal index: %v", err)
	}
	out.IndexDigest = digest.FromBytes(out.Index)
	r.putManifest(t, ref, out.Index, out.IndexMediaType)
	return out
}

// pushBundleImage pushes a random image of the kind img asks for (its
// mediaType, else its imageType) and fills in what fixup would.
func (r *Registry) pushBundleImage(t testing.TB, repo name.Repository, img *bundle.BaseImage) digest.Digest {
	t.Helper()
	mt := types.MediaType(img.MediaType)
	if mt == "" {
		mt = types.DockerManifestSchema2
		if img.ImageType == "oci" {
			mt = types.OCIManifestSchema1
		}
	}
	var (
		d    v1.Hash
		size int64
		err  error
	)
	switch mt {
	case types.OCIImageIndex, types.DockerManifestList:
		idx := randomIndex(t, mt)
		d, err = idx.Digest()
		if err == nil {
			size, err = idx.Size()
		}
		if err == nil {
			err = remote.WriteIndex(repo.Digest(d.String()), idx)
		}
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		im := randomImage(t, mt)
		d, err = im.Digest()
		if err == nil {
			size, err = im.Size()
		}
		if err == nil {
			err = remote.Write(repo.Digest(d.String()), im)
		}
	default:
		t.Fatalf("push bundle image %s: unsupported media type %q", img.Image, mt)
	}
	if err != nil {
		t.Fatalf("push bundle image %s to %s: %v", img.Image, repo, err)
	}
	img.Digest, img.Size, img.MediaType = d.String(), uint64(size), string(mt)
	return digest.Digest(d.String())
}

func randomImage(t testing.TB, mt types.MediaType) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatalf("random image: %v", err)
	}
	if mt == types.OCIManifestSchema1 {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	return img
}

func randomIndex(t testing.TB, mt types.MediaType) v1.ImageIndex {
	t.Helper()
	child := types.DockerManifestSchema2
	if mt == types.OCIImageIndex {
		child = types.OCIManifestSchema1
	}
	idx := mutate.IndexMediaType(empty.Index, mt)
	for _, arch := range []string{"amd64", "arm64"} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        randomImage(t, child),
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	return idx
}

// prepareBundleConfig picks the config blob and manifest for form from
// cnab-to-oci's PrepareForPush fallback chain. With editJSON the blob is
// replaced and the manifest rebuilt exactly as PrepareForPush builds it
// (its preparers are unexported).
func prepareBundleConfig(t testing.TB, b *bundle.Bundle, form BundleForm, editJSON func([]byte) []byte) *converter.PreparedBundleConfig {
	t.Helper()
	prepared, err := converter.PrepareForPush(b)
	if err != nil {
		t.Fatalf("prepare bundle config: %v", err)
	}
	cfg := prepared
	switch form {
	case BundleOCIImageConfig:
		cfg = prepared.Fallback
	case BundleDockerConfig:
		cfg = prepared.Fallback.Fallback
	}
	if editJSON == nil {
		return cfg
	}
	blob := editJSON(append([]byte(nil), cfg.ConfigBlob...))
	desc := ocispec.Descriptor{MediaType: cfg.ConfigBlobDescriptor.MediaType, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	var man []byte
	mt := ocispec.MediaTypeImageManifest
	if form == BundleDockerConfig {
		d := docker.Descriptor{MediaType: schema2.MediaTypeImageConfig, Size: desc.Size, Digest: desc.Digest}
		m, err := schema2.FromStruct(schema2.Manifest{Versioned: schema2.SchemaVersion, Config: d, Layers: []docker.Descriptor{d}})
		if err == nil {
			man, err = m.MarshalJSON()
		}
		if err != nil {
			t.Fatalf("build schema2 config manifest: %v", err)
		}
		mt = schema2.MediaTypeManifest
	} else {
		man, err = json.Marshal(&ocispec.Manifest{Versioned: ocispecs.Versioned{SchemaVersion: 2}, Config: desc})
		if err != nil {
			t.Fatalf("build config manifest: %v", err)
		}
	}
	return &converter.PreparedBundleConfig{
		ConfigBlob:           blob,
		ConfigBlobDescriptor: desc,
		Manifest:             man,
		ManifestDescriptor:   ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(man), Size: int64(len(man))},
	}
}

// copyBundle copies what PushBundle fills in, so the caller's bundle stays
// as it was.
func copyBundle(b *bundle.Bundle) *bundle.Bundle {
	c := *b
	c.InvocationImages = append([]bundle.InvocationImage(nil), b.InvocationImages...)
	c.Images = maps.Clone(b.Images)
	return &c
}

// rawManifest lets go-containerregistry PUT exact bytes with a media type.
type rawManifest struct {
	body []byte
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

func (r *Registry) putManifest(t testing.TB, ref name.Reference, body []byte, mediaType string) {
	t.Helper()
	if err := remote.Put(ref, rawManifest{body: body, mt: types.MediaType(mediaType)}); err != nil {
		t.Fatalf("put manifest %s (%s): %v", ref, mediaType, err)
	}
}

// The byte-exact cnab-to-oci push of Signy's test bundle
// (cnabio/signy testdata/cnab/bundle.json; research/cnab-formats.md §2.2):
// the index digest is what Signy's README and cnab-spec 806 print as
// "Pushed successfully, with digest".
const (
	SignyIndexDigest          digest.Digest = "sha256:b4936e42304c184bafc9b06dde9ea1f979129e09a021a8f40abc07f736de9268"
	SignyConfigManifestDigest digest.Digest = "sha256:c88087935c91817e3421c41794ace533f597428d4a9617bf7a6de5bc4200d8da"
	SignyBundleDigest         digest.Digest = "sha256:c7e92bd51f059d60b15ad456edf194648997d739f60799b37e08edafd88a81b5"
	// SignyInvocationDigest is cnab/helloworld:0.1.1's manifest (942 bytes),
	// which the vector references but whose bytes it does not include.
	SignyInvocationDigest digest.Digest = "sha256:a59a4e74d9cc89e4e75dfb2cc7ea5c108e4236ba6231b53081a9e2506d1197b6"

	signyBundleJSON     = `{"description":"A short description of your bundle","invocationImages":[{"contentDigest":"sha256:a59a4e74d9cc89e4e75dfb2cc7ea5c108e4236ba6231b53081a9e2506d1197b6","image":"cnab/helloworld:0.1.1","imageType":"docker","mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":942}],"keywords":["helloworld","cnab","tutorial"],"maintainers":[{"email":"jane.doe@example.com","name":"Jane Doe","url":"https://example.com"}],"name":"helloworld","schemaVersion":"v1.0.0-WD","version":"0.1.1"}`
	signyConfigManifest = `{"schemaVersion":2,"config":{"mediaType":"application/vnd.cnab.config.v1+json","digest":"sha256:c7e92bd51f059d60b15ad456edf194648997d739f60799b37e08edafd88a81b5","size":501},"layers":null}`
	signyIndex          = `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:c88087935c91817e3421c41794ace533f597428d4a9617bf7a6de5bc4200d8da","size":188,"annotations":{"io.cnab.manifest.type":"config"}},{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:a59a4e74d9cc89e4e75dfb2cc7ea5c108e4236ba6231b53081a9e2506d1197b6","size":942,"annotations":{"io.cnab.manifest.type":"invocation"}}],"annotations":{"io.cnab.keywords":"[\"helloworld\",\"cnab\",\"tutorial\"]","io.cnab.runtime_version":"v1.0.0-WD","org.opencontainers.artifactType":"application/vnd.cnab.manifest.v1","org.opencontainers.image.authors":"[{\"name\":\"Jane Doe\",\"email\":\"jane.doe@example.com\",\"url\":\"https://example.com\"}]","org.opencontainers.image.description":"A short description of your bundle","org.opencontainers.image.title":"helloworld","org.opencontainers.image.version":"0.1.1"}}`
)

// CNABVector holds the bytes of a byte-exact bundle push.
type CNABVector struct {
	Ref            name.Reference // set by NewRegistryWithSignyVector
	Index          []byte
	IndexMediaType string
	ConfigManifest []byte
	BundleJSON     []byte
}

// SignyVector returns fresh copies of the vector's bytes.
func SignyVector() CNABVector {
	return CNABVector{
		Index:          []byte(signyIndex),
		IndexMediaType: ocispec.MediaTypeImageIndex,
		ConfigManifest: []byte(signyConfigManifest),
		BundleJSON:     []byte(signyBundleJSON),
	}
}

// NewRegistryWithSignyVector starts a registry (filesystem storage in a
// temporary directory) holding the Signy vector under repoAndTag, byte for
// byte. The vector's invocation image (cnab/helloworld:0.1.1, 942 bytes) is
// not available, and distribution refuses an index whose children are
// missing, so the index is written through distribution's own storage API
// with dependency verification skipped; the bundle.json blob and the config
// manifest go in over HTTP as usual. Everything else works as with
// NewRegistry.
func NewRegistryWithSignyVector(t testing.TB, repoAndTag string) (*Registry, CNABVector) {
	t.Helper()
	v := SignyVector()
	for what, c := range map[digest.Digest][]byte{SignyIndexDigest: v.Index, SignyConfigManifestDigest: v.ConfigManifest, SignyBundleDigest: v.BundleJSON} {
		if got := digest.FromBytes(c); got != what {
			t.Fatalf("signy vector corrupted: have %s, want %s", got, what)
		}
	}
	root := t.TempDir()
	r := NewRegistryWithStorage(t, configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": root}})
	ref := r.Ref(t, repoAndTag)
	tag, ok := ref.(name.Tag)
	if !ok {
		t.Fatalf("signy vector: %q is not repo:tag", repoAndTag)
	}
	v.Ref = ref
	repo := ref.Context()
	if err := remote.WriteLayer(repo, static.NewLayer(v.BundleJSON, converter.CNABConfigMediaType)); err != nil {
		t.Fatalf("push signy bundle.json: %v", err)
	}
	r.putManifest(t, repo.Digest(SignyConfigManifestDigest.String()), v.ConfigManifest, ocispec.MediaTypeImageManifest)

	ctx := context.Background()
	ns, err := storage.NewRegistry(ctx, filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100}))
	if err != nil {
		t.Fatalf("open registry storage: %v", err)
	}
	named, err := distref.WithName(repo.RepositoryStr())
	if err != nil {
		t.Fatalf("repository name %s: %v", repo, err)
	}
	rs, err := ns.Repository(ctx, named)
	if err != nil {
		t.Fatalf("open repository %s: %v", named, err)
	}
	m, desc, err := distribution.UnmarshalManifest(v.IndexMediaType, v.Index)
	if err != nil {
		t.Fatalf("unmarshal signy index: %v", err)
	}
	ms, err := rs.Manifests(ctx)
	if err != nil {
		t.Fatalf("manifest service: %v", err)
	}
	if _, err := ms.Put(ctx, m, storage.SkipLayerVerification()); err != nil {
		t.Fatalf("store signy index: %v", err)
	}
	if err := rs.Tags(ctx).Tag(ctx, tag.TagStr(), desc); err != nil {
		t.Fatalf("tag signy index: %v", err)
	}
	return r, v
}
