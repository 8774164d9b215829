// Package cache is trustproxy's content-addressed store of approved content.
//
// It sits on a distribution v3 storage driver (filesystem, inmemory, s3) and
// knows nothing about policy: it only guarantees that what it returns is what
// the digest names. Objects are staged, hashed while they stream and
// committed atomically only after the digest and size matched. One upstream
// fetch serves every concurrent caller of a digest; cache hits are served
// from the driver's own reader without re-hashing. The storage layout and
// its crash guarantees are described in layout.go.
package cache
