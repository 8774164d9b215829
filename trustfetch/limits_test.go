package trustfetch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestOversizedMetadata(t *testing.T) {
	tests := []struct {
		name    string
		max     int64
		grow    func(r *testRepo)
		wantMsg string
	}{
		{"targets.json over MaxMetadataBytes", 4096, func(r *testRepo) {
			for i := range 40 {
				r.addTarget(metadata.TARGETS, fmt.Sprintf("docker.io/acme/app:%d", i), []byte{byte(i)}, "")
			}
			r.publish()
		}, "(MaxMetadataBytes)"},
		{"delegated role over MaxMetadataBytes", 4096, func(r *testRepo) {
			for i := range 40 {
				r.addTarget("targets/releases", fmt.Sprintf("docker.io/acme/app:%d", i), []byte{byte(i)}, "")
			}
			r.publish()
		}, "(MaxMetadataBytes)"},
		{"timestamp.json padded by the server", 0, func(r *testRepo) {
			r.publish()
			pad(t, filepath.Join(r.metadataDir(), "timestamp.json"), 20000)
		}, "timestamp.json is larger than 16384 bytes (go-tuf's bound for this file)"},
		{"snapshot longer than the timestamp records", 0, func(r *testRepo) {
			r.publish()
			pad(t, filepath.Join(r.metadataDir(), fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version)), 10)
		}, "(the length the signed metadata records)"},
		{"next root over MaxMetadataBytes", 4096, func(r *testRepo) {
			r.rotateRoot(func() {
				for range 40 {
					_, k := newSigner(t)
					must(t, r.root.Signed.AddKey(k, metadata.TARGETS))
				}
			}, func(old, _ []signature.Signer) []signature.Signer { return old })
		}, "2.root.json is larger than 4096 bytes (MaxMetadataBytes)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := releasesRepo(t)
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.MaxMetadataBytes = tc.max })
			before := mustIndex(t, repo)
			tc.grow(r)
			err := repo.Refresh(t.Context())
			if !errors.Is(err, &metadata.ErrDownloadLengthMismatch{}) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Refresh: %v, want a length error mentioning %q", err, tc.wantMsg)
			}
			if mustIndex(t, repo) != before {
				t.Fatal("index replaced after a failed refresh")
			}
		})
	}
}

func pad(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	must(t, os.WriteFile(path, append(b, []byte(strings.Repeat(" ", n))...), 0o644))
}
