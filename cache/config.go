package cache

import (
	"context"
	"fmt"

	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // registers "filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"   // registers "inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"     // registers "s3" and "s3aws"
)

// NewFromConfig builds the storage driver with distribution's factory and
// opens a cache on it. driver is "filesystem", "inmemory" or "s3"; the s3
// driver's package name "s3-aws" is accepted too (distribution v3 registers
// it as "s3" and "s3aws"), and any other registered name passes through.
// params go to the driver unchanged (e.g. "rootdirectory" for filesystem;
// "bucket", "region", "regionendpoint", ... for s3).
func NewFromConfig(ctx context.Context, driver string, params map[string]any, opts Options) (*Cache, error) {
	name := driver
	if name == "s3-aws" {
		name = "s3"
	}
	d, err := factory.Create(ctx, name, params)
	if err != nil {
		return nil, fmt.Errorf("create %q storage driver: %w", driver, err)
	}
	return New(ctx, d, opts)
}
