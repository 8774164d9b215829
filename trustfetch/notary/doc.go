// Package notary is a read-only Notary v1 trust source: the trust data
// Docker Content Trust (`docker trust sign`, DOCKER_CONTENT_TRUST=1) and
// Signy keep in a Notary server, verified with the Notary project's own
// client packages (github.com/theupdateframework/notary v0.7.0, which no
// other package of trustproxy imports) and offered to policy as a
// trustfetch.Index, the same view a TUF trust repository gives.
//
// # Per-GUN trust data
//
// A Notary server keeps one TUF repository per GUN, the fully qualified
// repository name (registry.example/acme/app). A Source loads a GUN the
// first time policy asks for it (IndexFor) and refreshes every verified GUN
// in Run; a GUN that did not verify is retried on request, at most every few
// seconds. Clients choose repository names, so the GUNs tracked are bounded
// (4096), and those that never verified are forgotten first. The Notary target "v1" of GUN g appears in the index as "g:v1", so
// rules and tag pinning work as with any trust repository whose trust name
// is the GUN.
//
// # Trust
//
// Trust in each GUN is pinned in the configuration by GUN pattern: the key
// IDs of the root role in root.json, or the root certificates themselves.
// A GUN no pin matches vouches for nothing; nothing is trusted on first
// use. The verified metadata is kept per GUN and pin under StateDir, so
// version rollback protection survives restarts; a changed pin starts from
// a fresh directory. Verification is the Notary client's (signatures and
// thresholds, versions, snapshot and timestamp hashes, delegations), and
// additionally every role's expiry is checked against the injected clock,
// before use and between refreshes (freeze protection).
//
// # Which targets count
//
// As `docker pull` with content trust does, a tag is taken from
// targets/releases first and from the top-level targets role otherwise;
// other delegations are ignored. A target must carry a sha256 hash. For
// images (DCT, `signy image`) it hashes the manifest; for a pin with
// Content "bundle" (Signy thin bundles) it hashes bundle.json, and the
// index marks it with the CNAB config media type so that policy resolves
// the bundle by tag and checks its bundle.json. The target's custom data
// (Signy's inline in-toto payload) is kept verbatim.
package notary
