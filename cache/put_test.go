package cache

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestPutBlob(t *testing.T) {
	for _, dc := range driverCases {
		t.Run(dc.name, func(t *testing.T) {
			ctx := context.Background()
			d, _ := dc.new(t)
			c, _ := newTestCache(t, d, Options{})
			body, dg := randomBytes(t, 3<<20)

			bad := bytes.Clone(body)
			bad[len(bad)/2] ^= 1
			for _, tc := range []struct {
				name string
				src  []byte
				size int64
				want error
			}{
				{"flipped byte", bad, int64(len(body)), ErrDigestMismatch},
				{"truncated", body[:len(body)-1], int64(len(body)), ErrSizeMismatch},
				{"longer", append(bytes.Clone(body), 0), int64(len(body)), ErrSizeMismatch},
			} {
				if _, err := c.PutBlob(ctx, dg, tc.size, bytes.NewReader(tc.src)); !errors.Is(err, tc.want) {
					t.Fatalf("%s: err = %v, want %v", tc.name, err, tc.want)
				}
				if _, err := c.StatBlob(ctx, dg); !errors.Is(err, ErrNotFound) {
					t.Fatalf("%s: a refused blob is visible: %v", tc.name, err)
				}
			}
			if files := driverFiles(t, d); len(files) != 0 {
				t.Fatalf("refused puts left objects behind: %v", files)
			}

			added, err := c.PutBlob(ctx, dg, int64(len(body)), bytes.NewReader(body))
			if err != nil || !added {
				t.Fatalf("PutBlob = %v, %v", added, err)
			}
			if added, err := c.PutBlob(ctx, dg, int64(len(body)), bytes.NewReader(nil)); err != nil || added {
				t.Fatalf("second PutBlob = %v, %v; want a no-op", added, err)
			}
			b, err := c.Blob(ctx, dg, int64(len(body)), staticUpstream(nil).fetch)
			if err == nil {
				var got []byte
				got, err = readBlob(t, b, 0)
				if err == nil && !bytes.Equal(got, body) {
					t.Fatal("stored bytes differ")
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTagHint(t *testing.T) {
	for _, dc := range driverCases {
		t.Run(dc.name, func(t *testing.T) {
			ctx := context.Background()
			d, _ := dc.new(t)
			c, _ := newTestCache(t, d, Options{})
			if _, err := c.TagHint(ctx, "up/acme/app", "1.0"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("TagHint before any put: %v", err)
			}
			_, d1 := randomBytes(t, 10)
			_, d2 := randomBytes(t, 10)
			for _, want := range []digest.Digest{d1, d2} {
				if err := c.PutTagHint(ctx, "up/acme/app", "1.0", want); err != nil {
					t.Fatal(err)
				}
				if got, err := c.TagHint(ctx, "up/acme/app", "1.0"); err != nil || got != want {
					t.Fatalf("TagHint = %s, %v; want %s", got, err, want)
				}
			}
			if err := c.PutTagHint(ctx, "up/../etc", "1.0", d1); err == nil {
				t.Fatal("a repository with .. was accepted")
			}
		})
	}
}
