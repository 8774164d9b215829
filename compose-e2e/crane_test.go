package e2e

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// craneOpts talk plain HTTP to the proxy on 127.0.0.1.
func craneOpts(t *testing.T, more ...crane.Option) []crane.Option {
	return append([]crane.Option{crane.Insecure, crane.WithContext(t.Context())}, more...)
}

// proxyRef is repoRef (e.g. acme/signed:1.0) through the proxy in the
// prefixed form: <proxy>/upstream.test/acme/signed:1.0.
func (s *stack) proxyRef(repoRef string) string {
	return s.proxy + "/" + upstreamName + "/" + repoRef
}

// TestCrane drives go-containerregistry's crane library (what crane, ko and
// many Go tools use) through the proxy.
func TestCrane(t *testing.T) {
	s := needStack(t)

	t.Run("signed", func(t *testing.T) {
		ref := s.proxyRef("acme/signed:1.0")
		d, err := crane.Digest(ref, craneOpts(t)...)
		if err != nil || d != s.seed.signed {
			t.Fatalf("crane digest %s = %q, %v; want the signed %s", ref, d, err, s.seed.signed)
		}
		img, err := crane.Pull(ref, craneOpts(t)...)
		if err != nil {
			t.Fatalf("crane pull %s: %v", ref, err)
		}
		if err := readImage(img); err != nil {
			t.Fatalf("pulled image %s does not validate: %v", ref, err)
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		ref := s.proxyRef("acme/unsigned:1.0")
		_, err := crane.Digest(ref, craneOpts(t)...)
		wantDenied(t, "crane digest "+ref, err, upstreamName+"/acme/unsigned")
		_, err = crane.Pull(s.proxyRef("acme/unsigned@"+s.seed.unsigned), craneOpts(t)...)
		wantDenied(t, "crane pull by digest", err, s.seed.unsigned)
	})

	t.Run("re-pushed tag", func(t *testing.T) {
		ref := s.proxyRef("acme/moved:1.0")
		d, err := crane.Digest(ref, craneOpts(t)...)
		if err != nil || d != s.seed.moved {
			t.Fatalf("crane digest %s = %q, %v; want the signed %s, not the re-pushed %s", ref, d, err, s.seed.moved, s.seed.movedUpstream)
		}
		_, err = crane.Manifest(s.proxyRef("acme/moved@"+s.seed.movedUpstream), craneOpts(t)...)
		wantDenied(t, "crane manifest of the re-pushed digest", err, s.seed.movedUpstream)
	})

	t.Run("multi-platform index", func(t *testing.T) {
		ref := s.proxyRef("acme/multi:1.0")
		if d, err := crane.Digest(ref, craneOpts(t)...); err != nil || d != s.seed.multi {
			t.Fatalf("crane digest %s = %q, %v; want the signed index %s", ref, d, err, s.seed.multi)
		}
		for arch, want := range s.seed.multiChild {
			img, err := crane.Pull(ref, craneOpts(t, crane.WithPlatform(&v1.Platform{OS: "linux", Architecture: arch}))...)
			if err != nil {
				t.Fatalf("crane pull --platform linux/%s %s: %v", arch, ref, err)
			}
			if d, err := img.Digest(); err != nil || d.String() != want {
				t.Fatalf("linux/%s: digest %v, %v; want %s", arch, d, err, want)
			}
			if err := readImage(img); err != nil {
				t.Fatalf("linux/%s does not validate: %v", arch, err)
			}
		}
	})
}

// wantDenied checks that err is trustproxy's 403 DENIED and that its
// message names what was asked for.
func wantDenied(t *testing.T, what string, err error, names string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: served; want DENIED", what)
	}
	msg := err.Error()
	if !strings.Contains(msg, "DENIED") || !strings.Contains(msg, names) {
		t.Fatalf("%s: error %q; want DENIED naming %s", what, msg, names)
	}
	t.Logf("%s: %s", what, msg)
}

// readImage reads the config and every layer of img; go-containerregistry
// checks each blob's digest as it reads.
func readImage(img v1.Image) error {
	if _, err := img.RawConfigFile(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		_, err = io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
	}
	return nil
}
