// Package mirror moves verified content across an air gap. Export pulls
// references through the proxy's verifying path and writes an OCI image
// layout with the TUF metadata (and in-toto target files) that vouched for
// it; Import verifies all of it against the importing side's pinned roots,
// persisted trust state and policy before anything becomes visible, then
// loads the content into the cache and commits the trust data.
//
// An export is a directory or a tar stream of it:
//
//	oci-layout, index.json, blobs/sha256/<hex>   the OCI image layout
//	trustproxy-mirror.json                       reference → digest → target
//	tuf/<trust>/metadata/                        consistent-snapshot TUF metadata
//	tuf/<trust>/targets/                         target files policy read (in-toto)
//
// Attachments of the exported manifests (attach.go) are blobs of the
// layout too, listed in trustproxy-mirror.json and annotated in index.json.
package mirror
