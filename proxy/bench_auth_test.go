package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trustproxy/trustproxy/access"
)

// BenchmarkManifestAuth is BenchmarkManifest's cached GET by tag with client
// authentication off, with Basic credentials (bcrypt, remembered after the
// first check) and with a bearer token of trustproxy's token service
// (verified once, then cached until it expires). The README's performance
// table reports the ratios.
func BenchmarkManifestAuth(b *testing.B) {
	e := newBenchEnv(b, false)
	a, err := access.New(access.Config{
		Htpasswd: writeUsers(b, teamUsers),
		Token:    &access.TokenConfig{Issuer: "bench", Service: "trustproxy", Key: writeTokenKey(b)},
		Rules:    []access.Rule{{Match: []string{"**"}, Allow: []string{"alice"}}},
	}, access.Options{})
	if err != nil {
		b.Fatal(err)
	}
	treq := httptest.NewRequest(http.MethodGet, "/token?service=trustproxy&scope=repository:acme/app:pull", nil)
	treq.SetBasicAuth("alice", teamUsers["alice"])
	trec := httptest.NewRecorder()
	a.ServeToken(trec, treq)
	var tok struct{ Token string }
	if err := json.Unmarshal(trec.Body.Bytes(), &tok); err != nil || tok.Token == "" {
		b.Fatalf("token: %s", trec.Body.String())
	}
	basicReq := httptest.NewRequest(http.MethodGet, "/", nil)
	basicReq.SetBasicAuth("alice", teamUsers["alice"])
	cases := []struct {
		name, authorization string
		access              *access.Authority
	}{
		{"none", "", nil},
		{"basic", basicReq.Header.Get("Authorization"), a},
		{"bearer", "Bearer " + tok.Token, a},
	}
	get := func(b *testing.B, authorization string, ac *access.Authority) {
		e.proxy.access = ac
		req := httptest.NewRequest(http.MethodGet, "/v2/acme/app/manifests/v1", nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		rec := httptest.NewRecorder()
		e.proxy.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				get(b, bc.authorization, bc.access)
			}
		})
	}
	// The three alternate request by request, so a loaded machine slows
	// them alike; the ratios of their total times are the cost of auth.
	b.Run("alternating", func(b *testing.B) {
		var total [3]time.Duration
		for b.Loop() {
			for i, bc := range cases {
				start := time.Now()
				get(b, bc.authorization, bc.access)
				total[i] += time.Since(start)
			}
		}
		b.ReportMetric(float64(total[1])/float64(total[0]), "basic/none")
		b.ReportMetric(float64(total[2])/float64(total[0]), "bearer/none")
	})
}
