//go:build bench

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

const mib = 1 << 20

// runSuite sets everything up, runs the selected scenarios and tears
// everything down. A scenario that fails is reported in Errors and the
// others still run; the returned error says that something failed.
func runSuite(ctx context.Context, s Settings, log io.Writer) (*Report, error) {
	rep := &Report{Schema: 1, Started: time.Now().UTC(), Settings: s}
	rep.Machine = Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(),
		GoVersion: runtime.Version(), LoadStart: readLoad()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		rep.Machine.Kernel = strings.TrimSpace(string(b))
	}
	defer func() {
		rep.Machine.LoadEnd = readLoad()
		rep.DurationSeconds = time.Since(rep.Started).Seconds()
	}()

	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "trustproxy-bench-")
	if err != nil {
		return nil, err
	}
	e := &benchEnv{s: s, work: work, log: log, client: newClient()}
	defer func() {
		e.stopAll()
		if s.Keep {
			fmt.Fprintf(log, "work directory kept: %s\n", work)
		} else {
			_ = os.RemoveAll(work)
		}
	}()
	if s.ProfileDir != "" {
		if err := os.MkdirAll(s.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}

	step := func(what string) func() {
		start := time.Now()
		fmt.Fprintf(log, "· %s\n", what)
		return func() { fmt.Fprintf(log, "  %s done in %.1fs\n", what, time.Since(start).Seconds()) }
	}

	done := step("build trustproxy, find distribution registry " + registryVersion)
	binDir := filepath.Join(work, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	if e.tpBin, err = buildTrustproxy(ctx, root, binDir, s.ProfileDir != "", s.Overlay, log); err != nil {
		return nil, err
	}
	if e.regBin, err = registryBinary(ctx, s.Registry, log); err != nil {
		return nil, err
	}
	rep.Binaries = Binaries{Registry: binaryVersion(ctx, e.regBin), Trustproxy: gitDescribe(ctx, root)}
	done()

	done = step("start upstream, seed images, sign them")
	if err := e.startUpstream(ctx); err != nil {
		return nil, err
	}
	if err := e.seed(ctx); err != nil {
		return nil, err
	}
	done()

	var errs []error
	runScenario := func(name string, fn func(context.Context, *Report) error) {
		if !s.want(name) || ctx.Err() != nil {
			return
		}
		d := step("scenario " + name)
		if err := fn(ctx, rep); err != nil {
			err = fmt.Errorf("%s: %w", name, err)
			errs = append(errs, err)
			rep.Errors = append(rep.Errors, err.Error())
			fmt.Fprintf(log, "  FAILED: %v\n", err)
		}
		d()
	}
	runScenario(scReferencing, e.references)
	runScenario(scCachedBlob, e.cachedBlob)
	runScenario(scColdBlob, e.coldBlob)
	runScenario(scColdImage, e.coldImage)
	runScenario(scManifests, e.manifests)
	runScenario(scConcurrent, e.concurrentCold)
	runScenario(scS3, e.s3Blob)
	runScenario(scReplicas, e.replicas)
	runScenario(scDecisions, e.decisions)
	runScenario(scStartupBig, e.startupLargeTrust)
	runScenario(scHashBins, e.hashBins)
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
		rep.Errors = append(rep.Errors, "run stopped: "+err.Error())
	}
	e.explain(rep)
	return rep, errors.Join(errs...)
}

// seed pushes the images the scenarios pull and signs them into a trust
// repository with ProxyTargets filler targets.
func (e *benchEnv) seed(ctx context.Context) error {
	s := e.s
	var err error
	if e.big, err = pushImage(ctx, e.upstream.host, "bench/big", "v1", 1, []int64{int64(s.BlobMiB) * mib}); err != nil {
		return err
	}
	sizes := make([]int64, s.ImageLayers)
	for i := range sizes {
		sizes[i] = int64(s.LayerMiB) * mib
	}
	if e.image, err = pushImage(ctx, e.upstream.host, "bench/image", "v1", 2, sizes); err != nil {
		return err
	}
	if e.small, err = pushImage(ctx, e.upstream.host, "bench/small", "v1", 3, []int64{1024}); err != nil {
		return err
	}
	dir, err := e.nextDir("trust-proxy")
	if err != nil {
		return err
	}
	if e.trust, err = newTrustRepo(ctx, dir); err != nil {
		return err
	}
	for _, img := range []*seededImage{e.big, e.image, e.small} {
		desc, err := e.trust.signImage(ctx, e.upstream.host, img.repoTag)
		if err != nil {
			return err
		}
		if desc.Digest != img.digest.String() {
			return fmt.Errorf("signed %s as %s, pushed %s", img.repoTag, desc.Digest, img.digest)
		}
	}
	return e.trust.addFiller(ctx, s.ProxyTargets)
}

func gitDescribe(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return "git " + strings.TrimSpace(string(out))
}
