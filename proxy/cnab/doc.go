// Package cnab resolves CNAB bundles that cnab-to-oci pushed to an OCI
// registry: an index (or Docker manifest list) whose entries are a config
// manifest holding bundle.json, one invocation image and the component
// images, all in the bundle's own repository.
//
// Everything is judged over the raw bytes the registry served: digests are
// recomputed, sizes bounded, and nothing is ever re-serialised, because
// CNAB Security signs the bundle.json blob byte for byte (spec 303) and the
// images are bound to it only through its contentDigest fields.
//
// The package imports nothing else from trustproxy: the proxy and the
// publisher both use it, each with its own Fetcher.
package cnab
