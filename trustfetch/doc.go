// Package trustfetch keeps one verified, immutable view of each configured
// TUF trust repository: it refreshes with go-tuf v2 and its own targets-role
// verifier, walks all delegations,
// enforces expiry between refreshes and downloads verified targets (such as
// in-toto metadata) on demand.
//
// # Repository layout
//
// A trust repository is a standard TUF 1.0 repository with consistent
// snapshots, served over http(s) or copied to a local directory:
//
//	<repo>/metadata/N.root.json, timestamp.json, V.snapshot.json,
//	                V.targets.json, V.<role>.json
//	<repo>/targets/<dir>/<sha256>.<base>   (target "<dir>/<base>")
//
// Config.Targets defaults to the sibling "targets" of Config.Metadata. A
// delegated role whose name contains "/" is requested as
// V.<role with "/" escaped as %2F>.json; a static file server decodes that
// to the path V.<role>.json with "/" as a directory separator, and a local
// directory may hold either form.
//
// # Trust
//
// The pinned root (Config.Root) is the only trust anchor; nothing is
// trusted on first use. Each Refresh runs the TUF client workflow over the
// persistent state directory, so rollback and freeze protection survive
// restarts: root rotation, timestamp and snapshot through go-tuf's
// trustedmetadata (as go-tuf's Updater does), then every targets role
// (explicit, path_hash_prefixes and succinct hash-bin delegations) through
// verifyTargetsRole: length and hashes from the snapshot, the delegator's
// signature threshold over the canonical JSON of "signed" (computed by a
// parser that refuses duplicate keys and anything else a second reader
// could read differently), type, version, expiry. go-tuf would build and
// re-encode an object graph of every target to do the same, which takes
// seconds and hundreds of MiB for 100,000 targets in one role.
//
// The verified roles are kept compactly (one segment per role) and a name
// is resolved when it is looked up, as go-tuf's GetTargetInfo resolves it:
// a pre-order depth-first walk of the delegations that cover the name, the
// first role listing it being authoritative, terminating delegations ending
// the search: a role cannot vouch for a name outside its delegated paths.
// A role the snapshot still names with the same version (and hashes) is
// not verified again, within a process or after a restart (see
// verifiedstate.go), so one changed hash bin costs that bin.
// Targets without a sha256 hash are ignored. When the only change is a new
// timestamp naming the snapshot the index was built from (and no next root
// exists), the timestamp is verified against the trusted root and the
// stored timestamp and persisted, and the index is kept without loading
// any role again: the usual refresh of a large repository costs two small
// requests.
//
// The resulting Index expires at the earliest expiry of the root,
// timestamp, snapshot, top-level targets and every delegated role it was
// built from. From then on Repository.Index fails with ErrExpired until a
// refresh succeeds, even if the trust server stays unreachable: a frozen
// or unreachable server can delay revocation by at most the metadata
// lifetime, never make it permanent.
package trustfetch
