package proxy

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// A blob another replica evicted between this replica's lookup and its
// read is fetched again, not answered with an error.
func TestBlobEvictedByAnotherReplicaRefetched(t *testing.T) {
	drv := inmemory.New()
	e := newEnv(t, envOpts{cache: newSharedCache(t, drv)})
	img := e.up.PushRandomImage(t, "open/app:1", 4096, 1, types.OCIManifestSchema1)
	ls, _ := img.Layers()
	ld, _ := ls[0].Digest()
	size, _ := ls[0].Size()
	resp := e.get(t, "GET", "/v2/open/app/manifests/1", map[string]string{"Accept": acceptAll})
	resp.Body.Close()
	path := "/v2/open/app/blobs/" + ld.String()
	resp = e.get(t, "GET", path, nil)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("first pull: %d", resp.StatusCode)
	}
	// The other replica's eviction: the object is gone from the shared
	// storage, this replica's index still lists it.
	hex := strings.TrimPrefix(ld.String(), "sha256:")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := drv.Stat(context.Background(), "/blobs/sha256/"+hex[:2]+"/"+hex+"/data"); err == nil {
			break // committed
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	if err := drv.Delete(context.Background(), "/blobs/sha256/"+hex[:2]+"/"+hex); err != nil {
		t.Fatal(err)
	}
	resp = e.get(t, "GET", path, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || int64(len(b)) != size {
		t.Fatalf("pull after eviction elsewhere: %d, %d bytes: %s", resp.StatusCode, len(b), b)
	}
}
