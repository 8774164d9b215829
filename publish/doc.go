// Package publish creates and signs the TUF repositories trustproxy
// verifies: standard TUF 1.0 metadata with consistent snapshots, signed with
// go-tuf v2 and sigstore signers (ed25519, ECDSA P-256, RSA-PSS).
//
// A repository directory is servable as-is by any static web server, or
// readable as a local directory (air-gapped):
//
//	<repo>/metadata/1.root.json        pin this one; clients follow rotations
//	<repo>/metadata/N.root.json        one file per root version
//	<repo>/metadata/V.targets.json     top-level targets, version V
//	<repo>/metadata/V.<role>.json      delegated targets roles
//	<repo>/metadata/V.snapshot.json
//	<repo>/metadata/timestamp.json     the only unversioned file
//	<repo>/targets/<dir>/<sha256>.<base>  target bytes (consistent snapshot names)
//	<repo>/staging/                    the publisher's working copy; clients ignore it
//
// Clients use <base>/metadata as the metadata URL and <base>/targets as the
// targets URL.
//
// Private keys live outside the repository, one directory per role:
// <keys>/<role>/<keyid>.key (PEM PKCS#8, mode 0600) with <keyid>.pub next to
// it. Keys are matched to roles by public key, so signing fails with a clear
// message when a file is missing, wrong, or too few to meet a threshold.
//
// Editing is staged: AddTarget, RemoveTarget and Delegate change the working
// copy under <repo>/staging, which persists across processes; Publish signs
// what changed plus a new snapshot and timestamp; Timestamp re-signs only the
// timestamp. Run Timestamp from cron more often than the timestamp expires
// (default one day) and Publish more often than the snapshot expires
// (default seven days); Publish also renews targets roles past half their
// lifetime. Each edit takes an advisory lock on <repo>/staging/lock and
// re-reads the working copy, so concurrent publishers do not lose changes.
package publish
