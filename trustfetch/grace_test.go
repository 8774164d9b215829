package trustfetch

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Expired trust data is refused unless allowExpiredFor is configured; the
// grace is bounded, logged, and applies to refreshes from an offline copy
// that is as late as the site's next import.
func TestAllowExpiredFor(t *testing.T) {
	r := newTestRepo(t)
	r.addTarget("targets", "docker.io/acme/app:1.0", []byte("m"), "")
	r.publish()
	expiry := r.timestamp.Signed.Expires

	for _, tc := range []struct {
		name   string
		grace  time.Duration
		at     time.Duration // after the timestamp's expiry
		wantOK bool
	}{
		{"no grace: refused at expiry", 0, time.Second, false},
		{"within the grace", 2 * time.Hour, time.Hour, true},
		{"past the grace", 2 * time.Hour, 3 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newTestClock()
			core, logs := observer.New(zap.WarnLevel)
			repo := r.open(r.metadataDir(), func(c *Config, o *Options) {
				c.AllowExpiredFor, o.Now, o.Logger = tc.grace, clock.Now, zap.New(core)
			})
			mustIndex(t, repo)
			clock.Set(expiry.Add(tc.at))
			_, err := repo.Index()
			if tc.wantOK != (err == nil) {
				t.Fatalf("Index at expiry+%s with grace %s: %v", tc.at, tc.grace, err)
			}
			if err != nil && !errors.Is(err, ErrExpired) {
				t.Fatalf("Index: %v, want ErrExpired", err)
			}
			// A fresh verifier reading the same (expired) copy: the
			// refresh itself honours the same grace.
			fresh := r.open(r.metadataDir(), func(c *Config, o *Options) {
				c.AllowExpiredFor, o.Now = tc.grace, clock.Now
			})
			if _, err := fresh.Index(); tc.wantOK != (err == nil) {
				t.Fatalf("fresh Index at expiry+%s with grace %s: %v", tc.at, tc.grace, err)
			}
			warned := logs.FilterMessage("using EXPIRED trust data under allowExpiredFor").Len()
			if tc.wantOK != (warned > 0) {
				t.Fatalf("warnings logged: %d", warned)
			}
		})
	}

	if _, err := (Config{Name: "x", Metadata: "/m", Root: "/r", StateDir: "/s", AllowExpiredFor: MaxAllowExpiredFor + time.Hour}).resolve(); err == nil ||
		!strings.Contains(err.Error(), "AllowExpiredFor") {
		t.Fatalf("an unbounded grace was accepted: %v", err)
	}
}

// ExportMetadata writes a tree a verifier pinned to the same root can
// update from, including a root rotation.
func TestExportMetadata(t *testing.T) {
	r := releasesRepo(t)
	repo := r.open(r.metadataDir(), nil)
	mustIndex(t, repo)
	both := func(old, new []signature.Signer) []signature.Signer { return append(old, new...) }
	r.rotateRoot(func() { r.replaceKey(metadata.ROOT) }, both)
	r.publish()
	r.rotateRoot(func() { r.replaceKey(metadata.ROOT) }, both)
	r.publish()
	must(t, repo.Refresh(t.Context()))
	out := t.TempDir()
	v, err := repo.ExportMetadata(t.Context(), out)
	if err != nil || v.Root != 3 {
		t.Fatalf("ExportMetadata = %+v, %v", v, err)
	}
	offline := r.open(out, nil)
	ix := mustIndex(t, offline)
	if ix.Versions() != v {
		t.Fatalf("offline versions %+v, exported %+v", ix.Versions(), v)
	}
	if _, ok := ix.Lookup("docker.io/acme/app:1.0"); !ok {
		t.Fatal("the delegated target is missing offline")
	}
}
