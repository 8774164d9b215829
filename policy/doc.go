// Package policy turns a pull request's subject (upstream, repository, tag or
// digest) and the current trust data into a decision: which digest a tag may
// resolve to, whether manifest bytes may be served, and why not.
//
// # Rules and modes
//
// A Config holds rules; each matches "<upstream>/<repository>" with a
// pattern ("*" within a path segment, a final "**" for one or more
// segments), and the most specific pattern wins. What no rule matches is
// denied. A rule's Mode is one of:
//
//   - enforce: serve only what the rule's trust repository vouches for;
//   - audit: serve everything, but log (and send a Warning header for) what
//     enforce would have refused;
//   - allow: an explicit, logged exception without verification.
//
// # Decisions
//
// The Engine answers three questions, each returning a Decision that names
// the rule, the trust repository and its targets version, the target, the
// digest and, when refused, the exact reason (Decision.Message is what a
// client shows). Every final decision is one structured audit log line.
//
//   - ResolveTag, before anything is fetched: the target
//     "<trust name>:<tag>" must exist; its sha256 and length become the
//     digest the proxy fetches (verified tag resolution). The trust name
//     defaults to "<upstream>/<repository>" and a rule may map it.
//   - CheckManifest, on the fetched bytes: for a tag they must hash to the
//     target exactly; for a digest the digest must be a target in the
//     repository's trust scope. in-toto evidence (layouts and links named in
//     the target's custom "in-toto", per CNAB Security 301) is evaluated
//     here, with the pulled manifest (or a bundle's bundle.json) as the only
//     material and product: no inspection command ever runs.
//   - CheckBundle, for a CNAB bundle: the target may hash bundle.json
//     (spec 303) or the index (porter's bundle digest); a signature over
//     bundle.json must bind every image through contentDigest.
//
// # Approval and revocation
//
// The proxy stores the decision that approved a root artifact and serves
// what it references (children of an index, blobs, a bundle's images)
// under it. StillApproved re-derives, without I/O, whether such a stored
// decision still holds under the current trust data: the same rule still
// governs the repository and, under enforce, the target still exists with
// the same hash. Because the proxy asks on every use, removing a target
// from TUF revokes everything approved through it within one trust refresh,
// and trust data past its expiry (trustfetch refuses to serve it) denies
// everything its enforce rules governed. Approvals are never trusted forever, only
// cached.
package policy
