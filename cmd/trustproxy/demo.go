package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/publish"
)

const demoUpstream = "demo.registry"

type demoOptions struct {
	listen, dir, logLevel string
	// self is how the printed commands run trustproxy (./trustproxy).
	self string
}

// selfCommand is how the user ran this binary, for the commands the demo
// prints: as typed (./trustproxy), or `go run ./cmd/trustproxy` when go run
// built it into a temporary directory that disappears with the process.
func selfCommand() string {
	if a := os.Args[0]; a != "" && !strings.Contains(a, "go-build") {
		return a
	}
	return "go run ./cmd/trustproxy"
}

func newDemoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a self-contained demo: upstream, TUF repository and proxy",
		Long: `Start, in this one process and with no network: an upstream registry with a
signed image, an unsigned image and a tag re-pushed after signing; a TUF
repository made with the publisher; and the proxy in enforce mode in front
of them. It prints commands to try; Ctrl-C stops it.`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: noFileCompletion,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.self == "" {
				o.self = selfCommand()
			}
			return serveDemo(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:5000", "`ADDRESS` for the proxy")
	f.StringVar(&o.dir, "dir", "", "working `DIR` for the demo (default: a new temporary directory)")
	f.StringVar(&o.logLevel, "log-level", "info", "`LEVEL` of the proxy's request and audit lines (they go to stderr)")
	_ = cmd.MarkFlagDirname("dir")
	return cmd
}

func serveDemo(ctx context.Context, o demoOptions, stdout io.Writer) error {
	if o.dir == "" {
		d, err := os.MkdirTemp("", "trustproxy-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	up, err := startDemoRegistry(ctx)
	if err != nil {
		return fmt.Errorf("start upstream registry: %w", err)
	}
	defer up.Close()

	push := func(repoTag string) (v1.Hash, error) {
		img, err := demoImage()
		if err != nil {
			return v1.Hash{}, err
		}
		ref, err := name.ParseReference(up.Host+"/"+repoTag, name.Insecure)
		if err != nil {
			return v1.Hash{}, err
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			return v1.Hash{}, fmt.Errorf("push %s: %w", repoTag, err)
		}
		return img.Digest()
	}
	repoDir, keysDir := filepath.Join(o.dir, "tuf", "repository"), filepath.Join(o.dir, "tuf", "keys")
	repo, err := publish.Init(ctx, repoDir, keysDir, publish.InitOptions{})
	if err != nil {
		return fmt.Errorf("create trust repository: %w", err)
	}
	sign := func(repoTag string) (publish.Descriptor, error) {
		ref, err := publish.ParseReference(up.Host+"/"+repoTag, true)
		if err != nil {
			return publish.Descriptor{}, err
		}
		desc, _, err := publish.ResolveImage(ctx, ref)
		if err != nil {
			return desc, err
		}
		_, err = repo.AddTarget("targets", demoUpstream+"/"+repoTag, desc.Size, desc.SHA256(), map[string]any{"mediaType": desc.MediaType})
		return desc, err
	}
	if _, err := push("demo/hello:1.0"); err != nil {
		return err
	}
	if _, err := push("demo/unsigned:1.0"); err != nil {
		return err
	}
	if _, err := push("demo/moved:1.0"); err != nil {
		return err
	}
	signed, err := sign("demo/hello:1.0")
	if err != nil {
		return err
	}
	signedMoved, err := sign("demo/moved:1.0")
	if err != nil {
		return err
	}
	if _, err := repo.Publish(ctx); err != nil {
		return fmt.Errorf("publish trust repository: %w", err)
	}
	// The attack: after signing, the upstream tag is re-pushed.
	moved, err := push("demo/moved:1.0")
	if err != nil {
		return err
	}

	cfgPath := filepath.Join(o.dir, "config.yaml")
	cfg := fmt.Sprintf(`# written by trustproxy demo
listen: %s
log: {level: %s, format: console}
storage:
  filesystem: {rootdirectory: %q}
state: %q
upstreams:
  - {name: %s, url: %q, default: true}
trust:
  demo: {metadata: %q, root: %q, refresh: 1m}
policy:
  default: deny
  rules:
    - {name: demo, match: "%s/demo/**", mode: enforce, trust: demo}
`, o.listen, o.logLevel, filepath.Join(o.dir, "cache"), filepath.Join(o.dir, "state"), demoUpstream, up.URL,
		filepath.Join(repoDir, "metadata"), repo.RootPath(), demoUpstream)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	in, err := openInstance(ctx, cfgPath, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w (use --listen to pick another address)", o.listen, err)
	}
	p := ln.Addr().String()
	fmt.Fprintf(stdout, `trustproxy demo: listening on %s
  upstream registry (in-process): %s   trust repository: %s
  config: %s

Try these (each pull goes through the proxy, which verifies it against the TUF repository):

  crane manifest --insecure %[1]s/demo/hello:1.0
      served: signed, digest %[5]s
  docker pull %[1]s/demo/hello:1.0
      pulls the signed image (127.0.0.0/8 needs no TLS for docker)
  docker pull %[1]s/demo/unsigned:1.0
      denied: no TUF target names it; docker prints trustproxy's reason
  skopeo inspect --tls-verify=false docker://%[1]s/demo/moved:1.0
      digest %[6]s: the signed one, although upstream's tag was re-pushed to %[7]s
  crane manifest --insecure %[1]s/demo/moved@%[7]s
      denied: the re-pushed manifest is not a target
  %[9]s check --config %[4]s %[8]s/demo/unsigned:1.0
      prints the decision and why, without serving

Press Ctrl-C to stop.
`, p, up.Host, repoDir, cfgPath, signed.Digest, signedMoved.Digest, moved, demoUpstream, o.self)
	in.log.Debug("demo ready", zap.String("proxy", p))
	return serveOn(ctx, in, ln, nil)
}

// demoImage is a small random image for this machine's platform, so that
// docker and podman accept it.
func demoImage() (v1.Image, error) {
	img, err := random.Image(4096, 2)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return mutate.ConfigFile(img, cf)
}
