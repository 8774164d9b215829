// Package trustfetch keeps one verified, immutable view of each configured
// TUF trust repository: it refreshes with go-tuf v2, walks all delegations,
// enforces expiry between refreshes and downloads verified targets (such as
// in-toto metadata) on demand.
package trustfetch
