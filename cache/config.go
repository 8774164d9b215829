package cache

import (
	"context"
	"fmt"

	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // registers "filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"   // registers "inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"     // registers "s3-aws"
)

// NewFromConfig builds the storage driver with distribution's factory and
// opens a cache on it. driver is "filesystem", "inmemory" or "s3" (an alias
// of distribution's "s3-aws"); any other registered driver name is passed
// through. params go to the driver unchanged (e.g. "rootdirectory" for
// filesystem; "bucket", "region", "regionendpoint", ... for s3).
func NewFromConfig(ctx context.Context, driver string, params map[string]any, opts Options) (*Cache, error) {
	name := driver
	if name == "s3" {
		name = "s3-aws"
	}
	d, err := factory.Create(ctx, name, params)
	if err != nil {
		return nil, fmt.Errorf("create %q storage driver: %w", driver, err)
	}
	return New(ctx, d, opts)
}
