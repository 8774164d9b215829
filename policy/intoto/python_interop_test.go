package intoto

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// The layout a publisher writes with Python in-toto's models API: owner key
// RSA, "build" by an ed25519 functionary, "package" by an ECDSA functionary
// whose public key is read from its JSON .pub. The layout is dumped unsigned
// and signed with in-toto-sign.
const pythonLayoutScript = `
from securesystemslib.interface import import_publickeys_from_file
from in_toto.models.layout import Layout, Step, Inspection
from in_toto.models.metadata import Metablock

keys = import_publickeys_from_file(["builder.pub", "packager.pub"], ["ed25519", "ecdsa"])
builder, packager = keys.values()

layout = Layout()
layout.set_relative_expiration(months=6)
layout.add_functionary_key(builder)
layout.add_functionary_key(packager)

build = Step(name="build")
build.pubkeys = [builder["keyid"]]
build.set_expected_command_from_string("sh -c 'cp main.go app.bin'")
build.add_material_rule_from_string("ALLOW main.go")
build.add_material_rule_from_string("DISALLOW *")
build.add_product_rule_from_string("CREATE app.bin")
build.add_product_rule_from_string("DISALLOW *")

package = Step(name="package")
package.pubkeys = [packager["keyid"]]
package.add_material_rule_from_string("MATCH app.bin WITH PRODUCTS FROM build")
package.add_material_rule_from_string("DISALLOW *")
package.add_product_rule_from_string("CREATE manifest.json")
package.add_product_rule_from_string("DISALLOW *")

check = Inspection(name="check-manifest")
check.set_run_from_string("true")
check.add_material_rule_from_string("MATCH manifest.json WITH PRODUCTS FROM package")
check.add_material_rule_from_string("DISALLOW *")

layout.steps = [build, package]
layout.inspect = [check]
Metablock(signed=layout).dump("root.layout")
`

const systemPython = "/usr/bin/python3" // not a pyenv python3 that may be first on PATH

func requirePythonInToto(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"in-toto-keygen", "in-toto-run", "in-toto-record", "in-toto-sign"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, "Python in-toto tools not installed (apt-get install -y in-toto): "+tool+" not found")
		}
	}
	if err := exec.Command(systemPython, "-c", "import in_toto.models.layout").Run(); err != nil {
		testenv.SkipOrFail(t, "Python in-toto tools not installed (apt-get install -y in-toto): "+systemPython+" cannot import in_toto")
	}
}

func TestPythonInterop(t *testing.T) {
	w := newPythonWorkdir(t)
	run, write, read, glob := w.run, w.write, w.read, w.glob
	w.keygen([2]string{"rsa", "owner"}, [2]string{"ed25519", "builder"}, [2]string{"ecdsa", "packager"})

	write("main.go", "package main\n")
	run("in-toto-run", "-n", "build", "-k", "builder", "-t", "ed25519", "-m", "main.go", "-p", "app.bin",
		"--", "sh", "-c", "cp main.go app.bin")
	run("in-toto-record", "start", "-n", "package", "-k", "packager", "-t", "ecdsa", "-m", "app.bin")
	run("sh", "-c", `printf '{"schemaVersion":2,"app":"%s"}' "$(sha256sum app.bin | cut -d' ' -f1)" > manifest.json`)
	run("in-toto-record", "stop", "-n", "package", "-k", "packager", "-t", "ecdsa", "-p", "manifest.json")

	write("layout.py", pythonLayoutScript)
	run(systemPython, "layout.py")
	run("in-toto-sign", "-f", "root.layout", "-k", "owner", "-t", "rsa")

	// The ECDSA trap: the JSON .pub gives Python's key id, the same key as
	// PEM gives another one.
	packagerJSON := read("packager.pub")
	fromJSON, err := ParsePublicKey(packagerJSON)
	if err != nil {
		t.Fatalf("ParsePublicKey(packager.pub): %v", err)
	}
	if !strings.Contains(string(glob("package.*.link")), fromJSON.KeyID) {
		t.Errorf("key id %s from packager.pub is not the one that signed the package link", fromJSON.KeyID)
	}
	fromPEM, err := ParsePublicKey([]byte(fromJSON.KeyVal.Public))
	if err != nil {
		t.Fatalf("ParsePublicKey(PEM of packager.pub): %v", err)
	}
	if fromPEM.KeyID == fromJSON.KeyID {
		t.Errorf("PEM and JSON forms of a Python ECDSA key got the same key id %s; the keyid trap is gone, update the docs", fromPEM.KeyID)
	}

	manifest := read("manifest.json")
	in := Input{
		Layout:      read("root.layout"),
		LayoutKeys:  [][]byte{read("owner.pub")},
		Links:       [][]byte{glob("build.*.link"), glob("package.*.link")},
		SubjectName: "manifest.json", SubjectSHA256: sha256Hex(manifest),
		Now: time.Now(),
	}
	res, err := Verify(context.Background(), in)
	if err != nil {
		t.Fatalf("Verify of Python-made metadata: %v", err)
	}
	if !slices.Equal(res.Steps, []string{"build", "package"}) || !slices.Equal(res.Inspections, []string{"check-manifest"}) {
		t.Errorf("Result = %+v", res)
	}
	if res.BoundBy != `step "package"` {
		t.Errorf("BoundBy = %q", res.BoundBy)
	}

	tampered := in
	tampered.SubjectSHA256 = sha256Hex(append(manifest, ' '))
	_, err = Verify(context.Background(), tampered)
	if err == nil || !strings.Contains(err.Error(), "produced manifest.json with digest sha256:"+sha256Hex(manifest)) {
		t.Fatalf("Verify of a tampered subject: %v", err)
	}

	// Python's own keygen writes the owner key as PEM; signing the layout with
	// the ed25519 builder key instead must not verify against owner.pub.
	run("in-toto-sign", "-f", "root.layout", "-k", "builder", "-t", "ed25519")
	wrongSigner := in
	wrongSigner.Layout = read("root.layout")
	if _, err := Verify(context.Background(), wrongSigner); err == nil || !strings.Contains(err.Error(), "layout is not signed by layout key") {
		t.Fatalf("Verify of a layout re-signed by another key: %v", err)
	}
}
