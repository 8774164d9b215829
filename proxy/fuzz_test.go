package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// fuzzServer has the upstream table routing reads; nothing is dialled.
func fuzzServer() *Server {
	hub := &upstream{name: "docker.io", dockerHub: true, base: &url.URL{Host: "registry-1.docker.io"}}
	ghcr := &upstream{name: "ghcr.io", base: &url.URL{Host: "ghcr.io"}}
	return &Server{upstreams: map[string]*upstream{"docker.io": hub, "ghcr.io": ghcr}, defaultUpstream: hub}
}

// FuzzRoute: every path and query a client sends is routed without
// panicking, and what is routed names a configured upstream and a valid
// repository of at most maxNameLength characters.
func FuzzRoute(f *testing.F) {
	for _, s := range [][2]string{
		{"/v2/", ""}, {"/v2/alpine/manifests/3.20", ""}, {"/v2/ghcr.io/acme/app/blobs/sha256:00", ""},
		{"/v2/library/alpine/manifests/latest", "ns=docker.io"}, {"/v2/x/tags/list", "n=1&last=a"},
		{"/v2/a/blobs/uploads/", ""}, {"/v2/a/referrers/sha256:00", ""}, {"/v2//manifests/x", ""},
		{"/v2/A/manifests/x", ""}, {"/v2/a/manifests/", "ns=nope"}, {"/v2/" + strings.Repeat("a/", 200) + "b/manifests/x", ""},
	} {
		f.Add(s[0], s[1])
	}
	s := fuzzServer()
	f.Fuzz(func(t *testing.T, path, query string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path, RawQuery: query}}
		rt, oerr := s.routeRequest(r)
		if oerr != nil {
			if oerr.Status < 400 || oerr.Code == "" {
				t.Fatalf("bad error %+v", oerr)
			}
			return
		}
		if rt.kind == kindBase || rt.kind == kindUpload {
			return
		}
		if rt.upstream == nil || s.upstreams[rt.upstream.name] != rt.upstream {
			t.Fatalf("%s?%s routed to an unconfigured upstream", path, query)
		}
		if len(rt.repo) > maxNameLength {
			t.Fatalf("%d-character repository routed", len(rt.repo))
		}
		if rt.repo == "" || strings.HasPrefix(rt.repo, "/") || strings.Contains(rt.repo, "//") {
			t.Fatalf("invalid repository %q routed", rt.repo)
		}
	})
}

// FuzzParseRange: a Range header never yields bytes outside the blob.
func FuzzParseRange(f *testing.F) {
	for _, h := range []string{"bytes=0-", "bytes=0-0", "bytes=-5", "bytes=5-1", "bytes=0-999999", "bytes=1-2,3-4", "bytes=--1", "bytes=-0", "items=0-1", "bytes=99999999999999999999-"} {
		f.Add(h, int64(100))
	}
	f.Add("bytes=0-", int64(0))
	f.Fuzz(func(t *testing.T, h string, total int64) {
		if total < 0 {
			total = -total
			if total < 0 {
				return
			}
		}
		start, length, partial, err := parseRange(h, total)
		if err != nil {
			return
		}
		if !partial {
			if start != 0 || length != total {
				t.Fatalf("%q of %d: whole response %d+%d", h, total, start, length)
			}
			return
		}
		if start < 0 || length <= 0 || start+length > total {
			t.Fatalf("%q of %d: range %d+%d outside the blob", h, total, start, length)
		}
	})
}

// FuzzParseRefs: manifests come from the upstream; what they reference is
// parsed without panicking.
func FuzzParseRefs(f *testing.F) {
	f.Add("application/vnd.oci.image.manifest.v1+json", []byte(`{"schemaVersion":2,"config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":-1}]}`))
	f.Add("application/vnd.oci.image.index.v1+json", []byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:00","size":1}]}`))
	f.Add("", []byte(`{"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":null}`))
	f.Fuzz(func(t *testing.T, mt string, body []byte) {
		_, _ = parseRefs(manifestMediaType(mt, body), body)
	})
}
