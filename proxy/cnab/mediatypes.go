package cnab

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of the objects cnab-to-oci writes (research: cnab-formats.md §2.1)
// that no library names; the OCI and Docker ones come from image-spec and
// go-containerregistry.
const (
	// MediaTypeCNABConfig is what cnab-to-oci calls the bundle.json blob.
	MediaTypeCNABConfig = "application/vnd.cnab.config.v1+json"
	// MediaTypeCNABBundleConfig is the name spec 201 uses for the same blob.
	MediaTypeCNABBundleConfig = "application/vnd.cnab.bundle.config.v1+json"
)

// Annotation keys and values cnab-to-oci puts on index entries.
const (
	AnnotationManifestType  = "io.cnab.manifest.type"
	AnnotationComponentName = "io.cnab.component.name"

	ManifestTypeConfig     = "config"
	ManifestTypeInvocation = "invocation"
	ManifestTypeComponent  = "component"
)

// Size bounds. bundle.json files are a few KiB; 4 MiB leaves room for big
// parameter schemas while keeping a hostile upstream from exhausting memory.
const (
	MaxBundleJSONSize = 4 << 20
	MaxManifestSize   = 4 << 20
)

// baseMediaType drops parameters ("; charset=utf-8") from a Content-Type.
func baseMediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.TrimSpace(mt)
}

func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == string(types.DockerManifestList)
}

// isImageManifestType reports the types an invocation or component entry may
// have: cnab-to-oci copies images as manifests or (multi-arch) indexes.
func isImageManifestType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, string(types.DockerManifestSchema2), ocispec.MediaTypeImageIndex, string(types.DockerManifestList):
		return true
	}
	return false
}

func isConfigManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == string(types.DockerManifestSchema2)
}

func isBundleConfigType(mt string) bool {
	switch mt {
	// The image config types are cnab-to-oci's fallbacks for registries that
	// refuse unknown config types.
	case MediaTypeCNABConfig, MediaTypeCNABBundleConfig, ocispec.MediaTypeImageConfig, string(types.DockerConfigJSON):
		return true
	}
	return false
}
