// Package proxy serves the read-only side of the OCI distribution API in
// front of upstream registries, asking policy before anything is fetched and
// serving only what was approved.
package proxy
