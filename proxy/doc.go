// Package proxy serves the read-only side of the OCI distribution API in
// front of upstream registries, asking policy before anything is fetched and
// serving only what was approved.
//
// # Request flow
//
// Server.ServeHTTP runs the handler built by routes (routes.go): an
// http.ServeMux for the registry API (/v2/), the operator endpoints
// (/healthz, /metrics, /readyz) and the token endpoint, and for the API a
// middleware chain — refuse bodies, access log, read-only, authenticate —
// ending in serveAPI, which routes the path to an upstream and repository
// (route.go: path prefix, containerd's ?ns=, or the default upstream),
// authorizes the principal, and dispatches by kind.
//
// # Approval
//
// Only manifests are decided by policy; everything else is served under an
// approval derived from one.
//
//   - A tag is resolved through the trust data, never upstream's tag:
//     policy.Engine.ResolveTag names the digest the TUF target vouches for,
//     the proxy fetches that digest, and CheckManifest requires the bytes to
//     hash to the target (sha256 and length). A re-pushed or rolled-back tag
//     upstream cannot change what clients get.
//   - A manifest by digest is served if the digest is a target in the
//     repository's trust scope, a child of an approved index, or an image of
//     an approved CNAB bundle (bundle.go checks the bundle as a unit before
//     any of it is served).
//   - Each approval is a grant (approvals.go): the decision for one root
//     artifact. The root's references — platform manifests, config and layer
//     blobs, a bundle's images — are recorded as covered by the grant, per
//     repository, in memory and in the cache's storage (so a restart and
//     every replica sharing it know them). A blob is served only while some
//     grant of the same repository covers it.
//   - Attachments (referrers.go, attachment.go: signatures, SBOMs,
//     attestations) are served under an attachment grant: the approval of
//     the subject they name, never one of their own. The trust data does
//     not vouch for them (the client verifies them); trustproxy checks that
//     each is an artifact, not a runnable image, naming the subject.
//
// # Revocation
//
// A grant is a derivation, never a source of trust. Every use re-checks it
// with policy.Engine.StillApproved against the current trust data, without
// I/O: the rule must still govern the repository and, under enforce, the
// target must still exist with the same hash. Removing or changing a target
// in TUF therefore revokes the root and everything it covers at the next
// trust refresh, even for blobs already in the cache; expired trust data
// (trustfetch) denies everything its enforce rules governed.
//
// # What is kept hand-written, and why
//
// Strict JSON parsing of manifests (proxy/cnab: duplicate keys and case
// variants would let two parsers disagree about what was signed), download
// sharing (cache: one upstream fetch per digest, verified while it streams),
// the access log (one line per request with the decision, which no logging
// middleware knows), OCI error bodies (errors.go: the spec's JSON shape with
// trustproxy's reason, which clients print), and Range parsing (byterange.go:
// RFC 9110's single byte ranges, with the blob's size known only after the
// cache lookup; net/http's ServeContent would need a seekable body).
package proxy
