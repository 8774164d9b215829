package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"    // registers "filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"      // registers "inmemory"
	s3driver "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws" // registers "s3" and "s3aws"
)

// NewFromConfig builds the storage driver with distribution's factory and
// opens a cache on it. driver is "filesystem", "inmemory" or "s3"; the s3
// driver's package name "s3-aws" is accepted too (distribution v3 registers
// it as "s3" and "s3aws"), and any other registered name passes through.
// params go to the driver unchanged (e.g. "rootdirectory" for filesystem;
// "bucket", "region", "regionendpoint", ... for s3).
//
// S3 storage is taken to be shared by replicas: unless opts say otherwise,
// a cold blob is downloaded once for all of them (S3Leases, renewed for
// opts.LeaseTTL), and staging objects younger than an hour are left to the
// replica writing them.
func NewFromConfig(ctx context.Context, driver string, params map[string]any, opts Options) (*Cache, error) {
	name := driver
	if name == "s3-aws" {
		name = "s3"
	}
	d, err := factory.Create(ctx, name, params)
	if err != nil {
		return nil, fmt.Errorf("create %q storage driver: %w", driver, err)
	}
	if root, ok := params["rootdirectory"].(string); ok && name == "filesystem" && opts.FilesystemRoot == "" {
		opts.FilesystemRoot = root
	}
	if sd, ok := d.(*s3driver.Driver); ok {
		if opts.Leases == nil {
			l, err := NewS3Leases(sd, params, opts.LeaseTTL, opts.Now)
			if err != nil {
				return nil, fmt.Errorf("s3 storage: %w", err)
			}
			opts.Leases = l
		}
		if opts.StagingGrace == 0 {
			opts.StagingGrace = sharedStagingGrace
		}
	}
	return New(ctx, d, opts)
}

// sharedStagingGrace is how long a replica's staging object on shared
// storage is safe from another replica's start-up sweep.
const sharedStagingGrace = time.Hour
