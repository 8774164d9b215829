package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

func TestManifests(t *testing.T) {
	body := []byte(`{"schemaVersion":2,"mediaType":"` + ociManifest + `","config":{}}`)
	good := digest.FromBytes(body)
	big := bytes.Repeat([]byte("a"), MaxManifestSize+1)
	tests := []struct {
		name      string
		dgst      digest.Digest
		mediaType string
		body      []byte
		wantErr   error // nil: stored and read back
		anyErr    bool  // some validation error without a sentinel
	}{
		{name: "stored and read back", dgst: good, mediaType: ociManifest, body: body},
		{name: "sha512 digest", dgst: digest.SHA512.FromBytes(body), mediaType: ociManifest, body: body},
		{name: "empty media type kept empty", dgst: good, mediaType: "", body: body},
		{name: "exactly the size limit", dgst: digest.FromBytes(big[:MaxManifestSize]), mediaType: ociManifest, body: big[:MaxManifestSize]},
		{name: "digest mismatch", dgst: digest.FromString("something else"), mediaType: ociManifest, body: body, wantErr: ErrDigestMismatch},
		{name: "too large", dgst: digest.FromBytes(big), mediaType: ociManifest, body: big, wantErr: ErrTooLarge},
		{name: "malformed digest", dgst: "sha256:1234", mediaType: ociManifest, body: body, anyErr: true},
		{name: "media type with newline", dgst: good, mediaType: "a\nb", body: body, anyErr: true},
		{name: "overlong media type", dgst: good, mediaType: strings.Repeat("x", 256), body: body, anyErr: true},
	}
	for _, dc := range driverCases {
		for _, tt := range tests {
			t.Run(dc.name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				d, _ := dc.new(t)
				c, reg := newTestCache(t, d, Options{})
				err := c.PutManifest(ctx, tt.dgst, tt.mediaType, tt.body)
				if tt.wantErr != nil || tt.anyErr {
					if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
						t.Fatalf("PutManifest: %v, want %v", err, tt.wantErr)
					}
					if files := driverFiles(t, d); len(files) != 0 {
						t.Fatalf("refused manifest left objects: %v", files)
					}
					if errors.Is(tt.wantErr, ErrDigestMismatch) {
						if got := metricValue(t, reg, "trustproxy_cache_digest_mismatches_total", "kind", "manifest"); got != 1 {
							t.Errorf("manifest digest mismatches = %v, want 1", got)
						}
					}
					if tt.dgst.Validate() == nil {
						if _, _, err := c.GetManifest(ctx, tt.dgst); !errors.Is(err, ErrNotFound) {
							t.Fatalf("GetManifest after refused put: %v, want ErrNotFound", err)
						}
					}
					return
				}
				if err != nil {
					t.Fatalf("PutManifest: %v", err)
				}
				if err := c.PutManifest(ctx, tt.dgst, tt.mediaType, tt.body); err != nil {
					t.Fatalf("second PutManifest: %v", err)
				}
				if c.Size() != int64(len(tt.body)) {
					t.Fatalf("Size() = %d after putting the same manifest twice, want %d", c.Size(), len(tt.body))
				}
				mt, got, err := c.GetManifest(ctx, tt.dgst)
				if err != nil || mt != tt.mediaType || !bytes.Equal(got, tt.body) {
					t.Fatalf("GetManifest: %q, %d bytes, %v", mt, len(got), err)
				}
				// A fresh cache on the same storage reads the media type from the driver.
				c2, _ := newTestCache(t, d, Options{})
				mt, got, err = c2.GetManifest(ctx, tt.dgst)
				if err != nil || mt != tt.mediaType || !bytes.Equal(got, tt.body) {
					t.Fatalf("GetManifest after reopening: %q, %d bytes, %v", mt, len(got), err)
				}
			})
		}
	}
}

func TestGetManifestMissing(t *testing.T) {
	c, reg := newTestCache(t, inmemoryDriver(), Options{})
	if _, _, err := c.GetManifest(context.Background(), digest.FromString("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetManifest of an unknown digest: %v, want ErrNotFound", err)
	}
	if got := metricValue(t, reg, "trustproxy_cache_misses_total", "kind", "manifest"); got != 1 {
		t.Errorf("manifest misses = %v, want 1", got)
	}
}

// A manifest whose bytes rot on disk is not served: it is evicted and
// reported as a digest mismatch. Bytes verified earlier and held in memory
// are not re-read, so the rot is found by a process reading storage: one
// without the memory, or a restarted one.
func TestGetManifestCorruptedOnDisk(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart bool
		opts    Options
	}{
		{name: "memory off", opts: Options{ManifestMemory: -1}},
		{name: "restarted process", restart: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			d := fsDriver(root)
			c, reg := newTestCache(t, d, tc.opts)
			body := []byte(`{"schemaVersion":2}`)
			dgst := digest.FromBytes(body)
			if err := c.PutManifest(ctx, dgst, ociManifest, body); err != nil {
				t.Fatal(err)
			}
			k := key{kindManifest, dgst}
			if err := os.WriteFile(filepath.Join(root, k.dataPath()), []byte(`{"schemaVersion":3}`), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.restart {
				c, reg = newTestCache(t, d, tc.opts)
			}
			if _, _, err := c.GetManifest(ctx, dgst); !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("GetManifest of corrupted bytes: %v, want ErrDigestMismatch", err)
			}
			if got := metricValue(t, reg, "trustproxy_cache_digest_mismatches_total", "kind", "manifest"); got != 1 {
				t.Errorf("manifest digest mismatches = %v, want 1", got)
			}
			if files := driverFiles(t, d); len(files) != 0 {
				t.Fatalf("corrupted manifest not removed: %v", files)
			}
			if _, _, err := c.GetManifest(ctx, dgst); !errors.Is(err, ErrNotFound) {
				t.Fatalf("GetManifest after eviction: %v, want ErrNotFound", err)
			}
		})
	}
}
