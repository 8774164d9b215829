package publish_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/publish"
)

func TestTargetName(t *testing.T) {
	for _, tc := range []struct {
		ref, trustName, want string
	}{
		{"alpine:3.20", "", "docker.io/library/alpine:3.20"},
		{"alpine", "", "docker.io/library/alpine:latest"},
		{"docker.io/alpine:3.20", "", "docker.io/library/alpine:3.20"},
		{"index.docker.io/library/alpine:3.20", "", "docker.io/library/alpine:3.20"},
		{"registry-1.docker.io/alpine:3.20", "", "docker.io/library/alpine:3.20"},
		{"acme/app:1", "", "docker.io/acme/app:1"},
		{"ghcr.io/acme/app:1.4.2", "", "ghcr.io/acme/app:1.4.2"},
		{"127.0.0.1:5000/team/app:v1", "", "127.0.0.1:5000/team/app:v1"},
		{"mirror.internal/library/alpine:3.20", "docker.io/library/alpine", "docker.io/library/alpine:3.20"},
		{"alpine@sha256:" + strings.Repeat("a", 64), "", ""},
	} {
		ref, err := publish.ParseReference(tc.ref, false)
		if err != nil {
			t.Fatalf("parse %s: %v", tc.ref, err)
		}
		got, err := publish.TargetName(ref, tc.trustName)
		if tc.want == "" {
			if err == nil {
				t.Errorf("TargetName(%s) = %s, want an error (no tag)", tc.ref, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("TargetName(%s, %q) = %q, %v; want %q", tc.ref, tc.trustName, got, err, tc.want)
		}
	}
	if _, err := publish.ParseReference("UPPER/case:1", false); err == nil {
		t.Error("invalid reference parsed")
	}
}

func TestResolveImage(t *testing.T) {
	reg := testenv.NewRegistry(t)
	for tag, mt := range map[string]types.MediaType{"oci": types.OCIManifestSchema1, "docker": types.DockerManifestSchema2} {
		img := reg.PushRandomImage(t, "team/app:"+tag, 256, 2, mt)
		wantDigest, _ := img.Digest()
		raw, _ := img.RawManifest()
		ref, err := publish.ParseReference(reg.Host+"/team/app:"+tag, true)
		if err != nil {
			t.Fatal(err)
		}
		desc, manifest, err := publish.ResolveImage(context.Background(), ref)
		if err != nil {
			t.Fatalf("resolve %s: %v", ref, err)
		}
		if desc.Digest != wantDigest.String() || desc.SHA256() != wantDigest.Hex || desc.Size != int64(len(raw)) || string(manifest) != string(raw) || desc.MediaType != string(mt) {
			t.Errorf("resolve %s = %+v, want %s, %d bytes, %s", ref, desc, wantDigest, len(raw), mt)
		}
	}

	// A multi-platform index is named by the index's own digest.
	idx := reg.PushRandomIndex(t, "team/multi:1", 2, types.OCIImageIndex)
	idxDigest, _ := idx.Digest()
	ref, _ := publish.ParseReference(reg.Host+"/team/multi:1", true)
	if desc, _, err := publish.ResolveImage(context.Background(), ref); err != nil || desc.Digest != idxDigest.String() || desc.MediaType != string(types.OCIImageIndex) {
		t.Errorf("resolve index = %+v, %v; want %s", desc, err, idxDigest)
	}

	// A signed schema 1 manifest's digest is not the hash of its bytes.
	reg.SetMiddleware(func(w http.ResponseWriter, req *http.Request, next http.Handler) {
		if strings.HasSuffix(req.URL.Path, "/manifests/schema1") {
			w.Header().Set("Content-Type", string(types.DockerManifestSchema1Signed))
			_, _ = w.Write([]byte(`{"schemaVersion":1,"name":"team/app","tag":"schema1"}`))
			return
		}
		next.ServeHTTP(w, req)
	})
	ref, _ = publish.ParseReference(reg.Host+"/team/app:schema1", true)
	if _, _, err := publish.ResolveImage(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "prettyjws manifests are not supported") {
		t.Errorf("schema 1 manifest: %v", err)
	}
	reg.SetMiddleware(nil)

	missing, _ := name.ParseReference(reg.Host+"/team/nothing:1", name.Insecure)
	if _, _, err := publish.ResolveImage(context.Background(), missing); err == nil || !strings.Contains(err.Error(), "resolve") {
		t.Errorf("missing image: %v", err)
	}
}
