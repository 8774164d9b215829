package mirror

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	const dg = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	for _, tc := range []struct {
		in, upstream, repo, tag, digest, err string
	}{
		{in: "docker.io/library/alpine:3.20", upstream: "docker.io", repo: "library/alpine", tag: "3.20"},
		{in: "up/acme/app@" + dg, upstream: "up", repo: "acme/app", digest: dg},
		{in: "reg:5000/acme/app:1", upstream: "reg:5000", repo: "acme/app", tag: "1"},
		{in: "docker.io/library/alpine", err: "needs a tag or a digest"},
		{in: "alpine:3.20", err: "must start with the upstream name"},
		{in: "up/acme/app@sha256:nothex", err: "reference"},
	} {
		s, err := parseRef(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || s.Upstream != tc.upstream || s.Repository != tc.repo || s.Tag != tc.tag || s.Digest.String() != tc.digest {
			t.Errorf("%s: %+v, %v", tc.in, s, err)
		}
	}
}
