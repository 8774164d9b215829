//go:build bench

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	registryModule  = "github.com/distribution/distribution/v3/cmd/registry"
	registryVersion = "v3.1.2"
	thisModule      = "github.com/trustproxy/trustproxy"
)

// moduleRoot finds the trustproxy module containing the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module "+thisModule+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the %s module: run from the repository", thisModule)
		}
		dir = parent
	}
}

// profileHook is added to package main of cmd/trustproxy only in the
// profiling build, through go build -overlay: it serves net/http/pprof and
// start/stop endpoints for a CPU profile on $TRUSTPROXY_BENCH_PPROF.
const profileHook = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
)

func init() {
	addr := os.Getenv("TRUSTPROXY_BENCH_PPROF")
	if addr == "" {
		return
	}
	runtime.SetBlockProfileRate(10000)
	runtime.SetMutexProfileFraction(10)
	var mu sync.Mutex
	var f *os.File
	http.HandleFunc("/bench/cpu/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if f != nil {
			http.Error(w, "profile running", http.StatusConflict)
			return
		}
		var err error
		if f, err = os.Create(r.URL.Query().Get("file")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			f = nil
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	http.HandleFunc("/bench/cpu/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if f == nil {
			http.Error(w, "no profile running", http.StatusConflict)
			return
		}
		pprof.StopCPUProfile()
		f.Close()
		f = nil
	})
	go http.ListenAndServe(addr, nil)
}
`

// buildTrustproxy builds cmd/trustproxy into dir. With profiling, the hook
// above is overlaid; the source tree is not touched.
//
// userOverlay is a `go build -overlay` file of the caller's: it lets the
// owner of a package measure a change (a patched copy of a file) without
// touching the shared tree.
func buildTrustproxy(ctx context.Context, root, dir string, profiling bool, userOverlay string, log io.Writer) (string, error) {
	bin := filepath.Join(dir, "trustproxy")
	args := []string{"build", "-o", bin}
	replace := map[string]string{}
	if userOverlay != "" {
		b, err := os.ReadFile(userOverlay)
		if err != nil {
			return "", fmt.Errorf("overlay: %w", err)
		}
		var ov struct{ Replace map[string]string }
		if err := json.Unmarshal(b, &ov); err != nil {
			return "", fmt.Errorf("overlay %s: %w", userOverlay, err)
		}
		for k, v := range ov.Replace {
			replace[k] = v
		}
	}
	if profiling {
		hook := filepath.Join(dir, "zz_benchprofile.go")
		if err := os.WriteFile(hook, []byte(profileHook), 0o644); err != nil {
			return "", err
		}
		replace[filepath.Join(root, "cmd", "trustproxy", "zz_benchprofile.go")] = hook
	}
	if len(replace) > 0 {
		ov, _ := json.Marshal(map[string]any{"Replace": replace})
		ovPath := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ovPath)
	}
	args = append(args, "./cmd/trustproxy")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return bin, nil
}

// registryBinary returns distribution's registry binary: the one given, or
// the one installed earlier into the user cache, or it installs it there
// with `go install` (minutes the first time: it downloads distribution's
// dependencies from the Go module proxy).
func registryBinary(ctx context.Context, given string, log io.Writer) (string, error) {
	if given == "" {
		given = os.Getenv("TRUSTPROXY_BENCH_REGISTRY")
	}
	if given != "" {
		if _, err := os.Stat(given); err != nil {
			return "", fmt.Errorf("registry binary: %w", err)
		}
		return given, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("registry binary: no user cache directory (%v); pass -registry", err)
	}
	dir := filepath.Join(cache, "trustproxy-bench", "registry-"+registryVersion)
	bin := filepath.Join(dir, "registry")
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "installing %s@%s into %s (first run only)\n", registryModule, registryVersion, dir)
	work, err := os.MkdirTemp("", "trustproxy-bench-install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	// Installed as its own main module (outside this repository), exactly
	// as the issue and distribution's docs say.
	cmd := exec.CommandContext(ctx, "go", "install", registryModule+"@"+registryVersion)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w (pass -registry BINARY to use another build)", registryModule, registryVersion, err)
	}
	return bin, nil
}

// binaryVersion is the first line of `bin --version`.
func binaryVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
