// Package cache is trustproxy's content-addressed store of approved content.
//
// It sits on a distribution v3 storage driver (filesystem, inmemory, s3) and
// knows nothing about policy: it only guarantees that what it returns is what
// the digest names. Objects are staged, hashed while they stream and
// committed atomically only after the digest and size matched.
package cache
