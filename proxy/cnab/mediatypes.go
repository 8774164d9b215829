package cnab

import "strings"

// Media types of the objects cnab-to-oci writes (research: cnab-formats.md §2.1).
const (
	MediaTypeOCIIndex           = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"

	// MediaTypeCNABConfig is what cnab-to-oci calls the bundle.json blob.
	MediaTypeCNABConfig = "application/vnd.cnab.config.v1+json"
	// MediaTypeCNABBundleConfig is the name spec 201 uses for the same blob.
	MediaTypeCNABBundleConfig = "application/vnd.cnab.bundle.config.v1+json"
	// MediaTypeOCIImageConfig and MediaTypeDockerContainerConfig are
	// cnab-to-oci's fallbacks for registries that refuse unknown config types.
	MediaTypeOCIImageConfig        = "application/vnd.oci.image.config.v1+json"
	MediaTypeDockerContainerConfig = "application/vnd.docker.container.image.v1+json"
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
	return mt == MediaTypeOCIIndex || mt == MediaTypeDockerManifestList
}

// isImageManifestType reports the types an invocation or component entry may
// have: cnab-to-oci copies images as manifests or (multi-arch) indexes.
func isImageManifestType(mt string) bool {
	switch mt {
	case MediaTypeOCIManifest, MediaTypeDockerManifest, MediaTypeOCIIndex, MediaTypeDockerManifestList:
		return true
	}
	return false
}

func isConfigManifestType(mt string) bool {
	return mt == MediaTypeOCIManifest || mt == MediaTypeDockerManifest
}

func isBundleConfigType(mt string) bool {
	switch mt {
	case MediaTypeCNABConfig, MediaTypeCNABBundleConfig, MediaTypeOCIImageConfig, MediaTypeDockerContainerConfig:
		return true
	}
	return false
}
