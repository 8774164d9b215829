package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

func TestNewFromConfig(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	tests := []struct {
		name      string
		driver    string
		params    map[string]any
		wantErr   bool
		unknown   bool   // the name must not resolve to a driver
		wantFiles string // a directory that must receive the objects
	}{
		{name: "filesystem", driver: "filesystem", params: map[string]any{"rootdirectory": root}, wantFiles: root},
		{name: "inmemory", driver: "inmemory"},
		// Every spelling of the s3 driver resolves; without parameters the
		// error must come from the driver, not the factory.
		{name: "s3 without parameters", driver: "s3", params: map[string]any{}, wantErr: true},
		{name: "s3-aws without parameters", driver: "s3-aws", params: map[string]any{}, wantErr: true},
		{name: "s3aws without parameters", driver: "s3aws", params: map[string]any{}, wantErr: true},
		{name: "unknown driver", driver: "floppy", wantErr: true, unknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewFromConfig(ctx, tt.driver, tt.params, Options{SpoolDir: t.TempDir()})
			var invalid factory.InvalidStorageDriverError
			if tt.wantErr {
				if err == nil {
					c.Close()
					t.Fatal("NewFromConfig succeeded")
				}
				if errors.As(err, &invalid) != tt.unknown {
					t.Fatalf("NewFromConfig(%q): %v; unknown-driver error expected: %v", tt.driver, err, tt.unknown)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			data, _ := randomBytes(t, 1000)
			dgst := putBlob(t, c, data)
			if tt.wantFiles != "" {
				if _, err := os.Stat(filepath.Join(tt.wantFiles, key{kindBlob, dgst}.dataPath())); err != nil {
					t.Fatalf("blob not stored under the configured root: %v", err)
				}
				// The filesystem driver's root is known: verified spools
				// are linked into it (TestCommitLinksTheSpool).
				if c.fsRoot != tt.wantFiles {
					t.Fatalf("FilesystemRoot %q, want %q", c.fsRoot, tt.wantFiles)
				}
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, nil, Options{}); err == nil {
		t.Error("New accepted a nil driver")
	}
	if _, err := New(ctx, inmemoryDriver(), Options{MaxSize: -1}); err == nil {
		t.Error("New accepted a negative MaxSize")
	}
	file := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(file, nil, 0o644))
	if _, err := New(ctx, inmemoryDriver(), Options{SpoolDir: filepath.Join(file, "spool")}); err == nil {
		t.Error("New accepted an unusable spool directory")
	}
	reg := newRegistry()
	if _, err := New(ctx, inmemoryDriver(), Options{Registerer: reg, SpoolDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, inmemoryDriver(), Options{Registerer: reg, SpoolDir: t.TempDir()}); err == nil {
		t.Error("two caches registered the same metrics on one registry without an error")
	}
}
