package proxy

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustproxy/trustproxy/cache"
)

// With verified manifests answered from memory, the decision is still made
// against the current trust data on every request: a tag moved to another
// digest serves the new one, and a removed target is denied by tag and by
// digest at the first request after the refresh, although both bodies are
// still held in memory.
func TestManifestMemoryFollowsTrust(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := cache.New(context.Background(), inmemory.New(), cache.Options{SpoolDir: t.TempDir(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	te := newTrustEnvWith(t, envOpts{cache: c})
	memHits := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "trustproxy_cache_manifest_memory_hits_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatal("no manifest memory metric")
		return 0
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp := te.get(t, "GET", path, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Docker-Content-Digest")
	}

	te.up.PushRandomImage(t, "acme/app:1.0", 256, 1, types.OCIManifestSchema1)
	v1 := te.sign(t, "acme/app:1.0", nil)
	for i := range 3 {
		if code, dg := get("/v2/acme/app/manifests/1.0"); code != 200 || dg != v1.Digest {
			t.Fatalf("GET #%d by tag: %d %s, want 200 %s", i, code, dg, v1.Digest)
		}
	}
	if n := memHits(); n < 2 {
		t.Fatalf("manifest answered from memory %v times over 3 GETs, want 2 (the first fetches)", n)
	}

	// The tag moves: the trust data names another digest.
	te.up.PushRandomImage(t, "acme/app:1.0", 256, 1, types.OCIManifestSchema1)
	v2 := te.sign(t, "acme/app:1.0", nil)
	if v2.Digest == v1.Digest {
		t.Fatal("the re-pushed tag has the same digest")
	}
	for i := range 2 {
		if code, dg := get("/v2/acme/app/manifests/1.0"); code != 200 || dg != v2.Digest {
			t.Fatalf("GET #%d by tag after the tag moved: %d %s, want 200 %s", i, code, dg, v2.Digest)
		}
	}

	// Revoked: nothing of it is served, by tag or digest.
	before := memHits()
	if _, err := te.repo.RemoveTarget("targets", upName+"/acme/app:1.0"); err != nil {
		t.Fatal(err)
	}
	te.publish(t)
	for _, p := range []string{"/v2/acme/app/manifests/1.0", "/v2/acme/app/manifests/" + v2.Digest, "/v2/acme/app/manifests/" + v1.Digest} {
		if code, msg := ociErr(t, te.get(t, "GET", p, nil)); code != "DENIED" {
			t.Fatalf("after revocation %s: %s %s", p, code, msg)
		}
	}
	if memHits() != before {
		t.Fatal("a revoked manifest was read from memory")
	}
}

// What a manifest references is parsed once per digest and remembered
// within bounds; bodies that do not parse are refused and not remembered.
func TestRefsMemo(t *testing.T) {
	manifest := func(i int) []byte {
		return fmt.Appendf(nil, `{"schemaVersion":2,"config":{"digest":"%s","size":%d},"layers":[{"digest":"%s","size":7}]}`,
			digest.FromString(fmt.Sprint("config", i)), i, digest.FromString(fmt.Sprint("layer", i)))
	}
	garbage := []byte("not json")
	r := newRefsMemo()
	body := manifest(1)
	d := digest.FromBytes(body)
	want := []covered{{digest.FromString("config1"), 1}, {digest.FromString("layer1"), 7}}
	for i, b := range [][]byte{body, garbage} { // the second answer is remembered, not parsed
		got, err := r.items(d, "application/vnd.oci.image.manifest.v1+json", b)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("call %d: %v, %v; want %v", i, got, err, want)
		}
	}
	if _, err := r.items(digest.FromBytes(garbage), "", garbage); err == nil {
		t.Fatal("garbage parsed")
	}
	if _, ok := r.m[digest.FromBytes(garbage)]; ok {
		t.Fatal("a refused body was remembered")
	}
	for i := 2; i < maxRefsMemo+2; i++ {
		b := manifest(i)
		if _, err := r.items(digest.FromBytes(b), "", b); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.m) != maxRefsMemo || r.lru.Len() != maxRefsMemo {
		t.Fatalf("memo holds %d (%d), want %d", len(r.m), r.lru.Len(), maxRefsMemo)
	}
	if _, err := r.items(d, "", garbage); err == nil {
		t.Fatal("the least recently used entry was not dropped")
	}
}
