package policy

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/trustproxy/trustproxy/internal/benchgen"
	"github.com/trustproxy/trustproxy/publish"
	"github.com/trustproxy/trustproxy/trustfetch"
)

const benchTargets = 100_000

// newBenchTrust publishes n targets with the publish package into dir and
// opens the repository with trustfetch from the directory, as an
// air-gapped trustproxy would.
func newBenchTrust(b *testing.B, dir string, n int) *trustfetch.Repository {
	b.Helper()
	ctx := context.Background()
	repoDir, keysDir := filepath.Join(dir, "repo"), filepath.Join(dir, "keys")
	if _, err := publish.Init(ctx, repoDir, keysDir, publish.InitOptions{}); err != nil {
		b.Fatal(err)
	}
	r, err := publish.Open(repoDir, keysDir, publish.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.AddTargets("targets", benchgen.Targets("up", n)); err != nil {
		b.Fatal(err)
	}
	if _, err := r.Publish(ctx); err != nil {
		b.Fatal(err)
	}
	trust, err := trustfetch.Open(ctx, trustfetch.Config{
		Name: "corp", Metadata: filepath.Join(repoDir, "metadata"), Root: r.RootPath(),
		StateDir: filepath.Join(dir, "state"), Refresh: time.Hour, MaxMetadataBytes: 128 << 20,
	}, trustfetch.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ix, err := trust.Index()
	if err != nil || ix.Len() != n {
		b.Fatalf("index: %v (%d targets)", err, n)
	}
	return trust
}

// BenchmarkDecision measures the policy engine against a 100,000-target
// trust index. "verified-tag" is a full tag decision as the proxy makes it
// for a manifest request: ResolveTag, then CheckManifest hashing the
// manifest bytes and writing the audit line (production JSON encoder, to
// io.Discard so the disk does not count).
func BenchmarkDecision(b *testing.B) {
	benchDecisions(b, newBenchTrust(b, b.TempDir(), benchTargets), benchTargets)
}

// BenchmarkDecisionHashBins is BenchmarkDecision against 1,000,000 targets
// (BENCH_TARGETS overrides it) in succinct hash bins, published by the
// publish package and read by trustfetch over HTTP.
func BenchmarkDecisionHashBins(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_TARGETS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	gen, err := benchgen.PublishHashBins(b.Context(), filepath.Join(dir, "repo"), filepath.Join(dir, "keys"), "up", n, 0)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(gen.Dir)))
	defer srv.Close()
	root := filepath.Join(dir, "root.json")
	if err := os.WriteFile(root, gen.Root, 0o644); err != nil {
		b.Fatal(err)
	}
	trust, err := trustfetch.Open(b.Context(), trustfetch.Config{
		Name: "corp", Metadata: srv.URL + "/metadata", Root: root,
		StateDir: filepath.Join(dir, "state"), Refresh: time.Hour, MaxMetadataBytes: 64 << 20,
	}, trustfetch.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if ix, err := trust.Index(); err != nil || ix.Len() != n {
		b.Fatalf("index: %v", err)
	}
	benchDecisions(b, trust, n)
}

func benchDecisions(b *testing.B, trust *trustfetch.Repository, targets int) {
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	e, err := New(Config{Rules: []Rule{{Name: "bench", Match: "up/**", Mode: ModeEnforce, Trust: "corp"}}},
		map[string]TrustSource{"corp": trust}, Options{Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	type req struct {
		s    Subject
		body []byte
		dg   digest.Digest
	}
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]req, 4096)
	for i := range reqs {
		n := rng.IntN(targets)
		repo, tag := benchgen.RepoTag(n)
		body := benchgen.Manifest(n)
		reqs[i] = req{Subject{Upstream: "up", Repository: repo, Tag: tag, Client: "127.0.0.1"}, body, digest.FromBytes(body)}
	}
	b.Run("verified-tag", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := &reqs[i%len(reqs)]
			i++
			d := e.ResolveTag(ctx, r.s)
			if d.Digest != r.dg {
				b.Fatalf("resolve %s: %+v", r.s.Reference(), d)
			}
			if d = e.CheckManifest(ctx, r.s, r.dg, "application/vnd.oci.image.manifest.v1+json", r.body); !d.Allowed || d.Reason != "" {
				b.Fatalf("check %s: %+v", r.s.Reference(), d)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	})
	b.Run("resolve-tag", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := &reqs[i%len(reqs)]
			i++
			if d := e.ResolveTag(ctx, r.s); d.Digest != r.dg {
				b.Fatalf("resolve %s: %+v", r.s.Reference(), d)
			}
		}
	})
	b.Run("verified-digest", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := &reqs[i%len(reqs)]
			i++
			s := r.s
			s.Tag, s.Digest = "", r.dg
			if d := e.CheckManifest(ctx, s, r.dg, "application/vnd.oci.image.manifest.v1+json", r.body); !d.Allowed || d.Reason != "" {
				b.Fatalf("check %s: %+v", s.Reference(), d)
			}
		}
	})
	b.Run("still-approved", func(b *testing.B) {
		// The per-blob re-check: a blob is served under a grant only while
		// its target still exists with the same hash.
		grants := make([]Decision, len(reqs))
		for i := range reqs {
			grants[i] = e.ResolveTag(ctx, reqs[i].s)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			k := i % len(reqs)
			i++
			if !e.StillApproved(reqs[k].s, grants[k]) {
				b.Fatalf("grant of %s no longer approved", reqs[k].s.Reference())
			}
		}
	})
}
