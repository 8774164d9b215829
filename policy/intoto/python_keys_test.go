package intoto

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pythonAllKeysLayout is a supply chain whose three steps are signed by one
// functionary of each key type in-toto-keygen offers. The RSA key enters the
// layout the way the layout API imports it, with "keyval": {"private": ""};
// Go's in-toto structs drop that field when re-encoding, so a verifier that
// checks signatures over a re-encoding refuses the layout.
const pythonAllKeysLayout = `
import sys
from securesystemslib.interface import import_publickeys_from_file, import_rsa_privatekey_from_file
from in_toto.models.layout import Layout, Step
from in_toto.models.metadata import Metablock

layout = Layout()
layout.set_relative_expiration(months=6)
rsa = layout.add_functionary_key_from_path("f-rsa.pub")
others = import_publickeys_from_file(["f-ed25519.pub", "f-ecdsa.pub"], ["ed25519", "ecdsa"])
ed, ec = others.values()
layout.add_functionary_key(ed)
layout.add_functionary_key(ec)

fetch = Step(name="fetch")
fetch.pubkeys = [rsa["keyid"]]
fetch.add_product_rule_from_string("CREATE src.txt")
fetch.add_product_rule_from_string("DISALLOW *")

build = Step(name="build")
build.pubkeys = [ed["keyid"]]
build.add_material_rule_from_string("MATCH src.txt WITH PRODUCTS FROM fetch")
build.add_material_rule_from_string("DISALLOW *")
build.add_product_rule_from_string("CREATE app.bin")
build.add_product_rule_from_string("DISALLOW *")

package = Step(name="package")
package.pubkeys = [ec["keyid"]]
package.add_material_rule_from_string("MATCH app.bin WITH PRODUCTS FROM build")
package.add_material_rule_from_string("DISALLOW *")
package.add_product_rule_from_string("CREATE manifest.json")
package.add_product_rule_from_string("DISALLOW *")

layout.steps = [fetch, build, package]
mb = Metablock(signed=layout)
if len(sys.argv) > 1:
    # Signed with the layout API instead of in-toto-sign.
    mb.sign(import_rsa_privatekey_from_file(sys.argv[1]))
mb.dump("root.layout")
`

// pythonWorkdir runs the reference tools in a temporary directory.
type pythonWorkdir struct {
	t   *testing.T
	dir string
}

func newPythonWorkdir(t *testing.T) *pythonWorkdir {
	requirePythonInToto(t)
	return &pythonWorkdir{t: t, dir: t.TempDir()}
}

func (w *pythonWorkdir) run(name string, args ...string) {
	w.t.Helper()
	if out, err := w.output(name, args...); err != nil {
		w.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (w *pythonWorkdir) output(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = w.dir
	return cmd.CombinedOutput()
}

func (w *pythonWorkdir) write(name, content string) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, name), []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *pythonWorkdir) read(name string) []byte {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, name))
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func (w *pythonWorkdir) glob(pattern string) []byte {
	w.t.Helper()
	m, err := filepath.Glob(filepath.Join(w.dir, pattern))
	if err != nil || len(m) != 1 {
		w.t.Fatalf("glob %s: %v %v", pattern, m, err)
	}
	return w.read(filepath.Base(m[0]))
}

// keygen makes keys with in-toto-keygen in parallel (RSA takes seconds in
// Python); each entry is {type, name}.
func (w *pythonWorkdir) keygen(keys ...[2]string) {
	w.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := w.output("in-toto-keygen", "-t", k[0], k[1]); err != nil {
				errs[i] = fmt.Errorf("in-toto-keygen -t %s %s: %v\n%s", k[0], k[1], err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		w.t.Fatal(err)
	}
}

// compactLayout is the README's one-liner that rewrites a layout compactly.
const compactLayout = `import json,sys; json.dump(json.load(open(sys.argv[1])), sys.stdout, separators=(",",":"))`

var keygenTypes = []string{"rsa", "ed25519", "ecdsa"}

// TestPythonKeysOfEveryType verifies a supply chain made entirely by the
// reference tools, with functionaries and layout owners of every key type
// in-toto-keygen offers, the layout signed by in-toto-sign and by the layout
// API. Python's in-toto-verify accepts each of them, and so must Verify.
func TestPythonKeysOfEveryType(t *testing.T) {
	w := newPythonWorkdir(t)
	var keys [][2]string
	for _, kt := range keygenTypes {
		keys = append(keys, [2]string{kt, "f-" + kt}, [2]string{kt, "owner-" + kt})
	}
	w.keygen(keys...)

	w.run("in-toto-run", "-n", "fetch", "-k", "f-rsa", "-t", "rsa", "-p", "src.txt", "--", "sh", "-c", "echo source > src.txt")
	w.run("in-toto-run", "-n", "build", "-k", "f-ed25519", "-t", "ed25519", "-m", "src.txt", "-p", "app.bin",
		"--", "sh", "-c", "cp src.txt app.bin")
	w.run("in-toto-run", "-n", "package", "-k", "f-ecdsa", "-t", "ecdsa", "-m", "app.bin", "-p", "manifest.json",
		"--", "sh", "-c", `printf '{"schemaVersion":2}' > manifest.json`)
	links := [][]byte{w.glob("fetch.*.link"), w.glob("build.*.link"), w.glob("package.*.link")}
	manifest := w.read("manifest.json")
	w.write("layout.py", pythonAllKeysLayout)

	type signing struct {
		name  string
		owner string // key file base name
		sign  func()
	}
	var cases []signing
	for _, kt := range keygenTypes {
		cases = append(cases, signing{"in-toto-sign/" + kt, "owner-" + kt, func() {
			w.run(systemPython, "layout.py")
			w.run("in-toto-sign", "-f", "root.layout", "-k", "owner-"+kt, "-t", kt)
		}})
	}
	cases = append(cases, signing{"layout-API/rsa", "owner-rsa", func() { w.run(systemPython, "layout.py", "owner-rsa") }})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.sign()
			kt := strings.TrimPrefix(c.owner, "owner-")
			// The reference verifier accepts what the reference tools wrote.
			if out, err := w.output("in-toto-verify", "-l", "root.layout", "-k", c.owner+".pub", "-t", kt, "--link-dir", "."); err != nil {
				t.Fatalf("in-toto-verify: %v\n%s", err, out)
			}
			in := Input{
				Layout: w.read("root.layout"), LayoutKeys: [][]byte{w.read(c.owner + ".pub")}, Links: links,
				SubjectName: "manifest.json", SubjectSHA256: sha256Hex(manifest), Now: time.Now(),
			}
			res, err := Verify(context.Background(), in)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.BoundBy != `step "package"` || len(res.Functionaries) != 3 {
				t.Errorf("Result = %+v", res)
			}
			// The README's way to publish a large layout: a compact copy
			// verifies unchanged, signatures cover canonical JSON.
			compact, err := w.output(systemPython, "-c", compactLayout, "root.layout")
			if err != nil {
				t.Fatalf("compact: %v\n%s", err, compact)
			}
			if len(compact) >= len(in.Layout) {
				t.Fatalf("compact layout is %d bytes, the indented one %d", len(compact), len(in.Layout))
			}
			in.Layout = compact
			if _, err := Verify(context.Background(), in); err != nil {
				t.Fatalf("Verify of the compact layout: %v", err)
			}
		})
	}
}
