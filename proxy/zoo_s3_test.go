package proxy

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// distribution on its s3 driver against a real S3 server (versitygw): blobs
// come as 307s to presigned URLs on the S3 host (same IP, another port: Go's
// own redirect rule would carry the Basic credentials there). The pull
// works, S3's own log shows no presigned request carried Authorization, and
// a HEAD reaches the HEAD-signed URL (a GET-signed one answers 403).
func TestZooS3PresignedRedirects(t *testing.T) {
	s3 := testenv.NewS3Registry(t, zooUser, zooPass)
	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(s3.Host+"/open/app:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: zooUser, Password: zooPass})); err != nil {
		t.Fatalf("push: %v", err)
	}
	e := newEnvFor(t, &testenv.Registry{URL: s3.URL, Host: s3.Host}, envOpts{access: openAccess(t), upstream: func(uc *UpstreamConfig) {
		uc.Username, uc.Password = zooUser, zooPass
	}})

	pulled, err := crane.Pull(e.host+"/open/app:v1", craneOpts()...)
	if err != nil {
		t.Fatalf("pull through trustproxy: %v", err)
	}
	assertSameImage(t, img, pulled)

	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	size, _ := layers[0].Size()
	resp, err := e.proxy.upstreams[upName].do(context.Background(), http.MethodHead, "open/app", "blobs/"+ld.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.FormatInt(size, 10) || resp.Request.Method != http.MethodHead {
		t.Fatalf("HEAD through the presigned redirect: %d, Content-Length %q, final method %s", resp.StatusCode, resp.Header.Get("Content-Length"), resp.Request.Method)
	}
	if resp.Request.URL.Host == s3.Host {
		t.Fatal("the HEAD was not redirected to S3: the test proves nothing")
	}

	var presigned int
	waitFor(t, "logged by S3", func() bool { // its log trails its responses
		presigned = 0
		for _, r := range s3.S3Requests() {
			if r.Presigned {
				presigned++
			}
		}
		return presigned >= 3
	})
	for _, r := range s3.S3Requests() {
		if r.Presigned && r.Authorization {
			t.Errorf("S3 received a presigned request with an Authorization header: %s", r.URL)
		}
	}
	if presigned < 3 { // 2 layers and a HEAD
		t.Fatalf("S3 saw %d presigned requests; want the blobs served through presigned redirects", presigned)
	}
}
