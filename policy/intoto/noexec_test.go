package intoto

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
)

// TestInspectionRulesFailClosed pins the no-exec semantics of every artifact
// rule type in an inspection: rules that only a command that really ran could
// satisfy, or that name an artifact other than the subject, deny with the
// rule; ALLOW and DISALLOW are evaluated as in-toto does on a directory that
// holds only the subject.
func TestInspectionRulesFailClosed(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name                string
		materials, products [][]string
		want                string // "" = allowed
	}{
		{name: "MATCH of another artifact", materials: [][]string{{"MATCH", "app.tar", "WITH", "PRODUCTS", "FROM", "package"}, {"ALLOW", "*"}},
			want: `expected_materials rule "MATCH app.tar WITH PRODUCTS FROM package": it refers to app.tar, not to the subject manifest.json`},
		{name: "MATCH IN a directory", products: [][]string{{"MATCH", "*.py", "IN", "src", "WITH", "PRODUCTS", "FROM", "build"}, {"ALLOW", "*"}},
			want: `expected_products rule "MATCH *.py IN src WITH PRODUCTS FROM build": it refers to src/*.py`},
		{name: "MATCH of the subject", materials: [][]string{{"MATCH", "manifest.json", "WITH", "PRODUCTS", "FROM", "package"}, {"DISALLOW", "*"}}},
		{name: "MATCH of the subject against other bytes", materials: [][]string{{"MATCH", "*", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}},
			want: `materials [manifest.json] disallowed by rule [DISALLOW *]`},
		{name: "CREATE", products: [][]string{{"CREATE", "manifest.json"}, {"ALLOW", "*"}},
			want: `expected_products rule "CREATE manifest.json": a command that never runs creates nothing`},
		{name: "MODIFY", products: [][]string{{"MODIFY", "*"}, {"ALLOW", "*"}},
			want: `expected_products rule "MODIFY *": a command that never runs modifies nothing`},
		{name: "DELETE", materials: [][]string{{"DELETE", "tmp/*"}, {"ALLOW", "*"}},
			want: `expected_materials rule "DELETE tmp/*": a command that never runs deletes nothing`},
		{name: "REQUIRE of another artifact", products: [][]string{{"REQUIRE", "report.txt"}, {"ALLOW", "*"}},
			want: `expected_products rule "REQUIRE report.txt": it refers to report.txt, not to the subject`},
		{name: "REQUIRE of the subject", products: [][]string{{"REQUIRE", "manifest.json"}, {"ALLOW", "*"}}},
		{name: "ALLOW of other artifacts", products: [][]string{{"ALLOW", "root.layout"}, {"ALLOW", "*.link"}, {"ALLOW", "manifest.json"}, {"DISALLOW", "*"}}},
		{name: "DISALLOW of the subject", materials: [][]string{{"DISALLOW", "manifest.json"}},
			want: `materials [manifest.json] disallowed by rule [DISALLOW manifest.json]`},
		{name: "DISALLOW of other artifacts", materials: [][]string{{"DISALLOW", "*.tar"}, {"ALLOW", "*"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := f.layout()
			l.Inspect = []in_toto.Inspection{{Type: "inspection", Run: []string{"tar", "xf", "app.tar"},
				SupplyChainItem: in_toto.SupplyChainItem{Name: "untar", ExpectedMaterials: tc.materials, ExpectedProducts: tc.products}}}
			_, err := Verify(context.Background(), f.input(signClassic(t, l, f.k.owner), f.goodLinks(t, signClassic)))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `inspection "untar" (run "tar xf app.tar")`) {
				t.Fatalf("Verify error %v\nwant it to name the inspection and contain %q", err, tc.want)
			}
		})
	}
}

// pythonUntarLayout is the in-toto demo's shape: step "clone" fetches the
// sources, "package" tars them and writes the manifest, and inspection
// "untar" extracts app.tar and MATCHes the extracted files with the products
// of clone. Only running tar can make that inspection mean anything.
const pythonUntarLayout = `
from securesystemslib.interface import import_publickeys_from_file
from in_toto.models.layout import Layout, Step, Inspection
from in_toto.models.metadata import Metablock

dev = list(import_publickeys_from_file(["dev.pub"], ["ed25519"]).values())[0]
layout = Layout()
layout.set_relative_expiration(months=1)
layout.add_functionary_key(dev)

clone = Step(name="clone")
clone.pubkeys = [dev["keyid"]]
clone.add_product_rule_from_string("CREATE src/*")
clone.add_product_rule_from_string("DISALLOW *")

package = Step(name="package")
package.pubkeys = [dev["keyid"]]
package.add_material_rule_from_string("MATCH src/* WITH PRODUCTS FROM clone")
package.add_material_rule_from_string("DISALLOW *")
package.add_product_rule_from_string("CREATE app.tar")
package.add_product_rule_from_string("CREATE manifest.json")
package.add_product_rule_from_string("DISALLOW *")

untar = Inspection(name="untar")
untar.set_run_from_string("tar xf app.tar")
untar.add_material_rule_from_string("MATCH app.tar WITH PRODUCTS FROM package")
untar.add_material_rule_from_string("MATCH manifest.json WITH PRODUCTS FROM package")
untar.add_material_rule_from_string("DISALLOW *")
untar.add_product_rule_from_string("MATCH src/* WITH PRODUCTS FROM clone")
untar.add_product_rule_from_string("ALLOW app.tar")
untar.add_product_rule_from_string("ALLOW manifest.json")
untar.add_product_rule_from_string("DISALLOW *")

layout.steps = [clone, package]
layout.inspect = [untar]
Metablock(signed=layout).dump("root.layout")
`

// TestPythonUntarInspectionDenied: a layout whose inspection untars an
// archive and MATCHes its files is denied, naming the rule. The reference
// verifier agrees: run in a directory that holds only the subject it denies
// too (tar fails), and it accepts only where the archive is present and
// really extracted.
func TestPythonUntarInspectionDenied(t *testing.T) {
	w := newPythonWorkdir(t)
	w.keygen([2]string{"ed25519", "owner"}, [2]string{"ed25519", "dev"})
	w.run("in-toto-run", "-n", "clone", "-k", "dev", "-t", "ed25519", "-p", "src", "--",
		"sh", "-c", "mkdir src && echo 'print(1)' > src/app.py")
	w.run("in-toto-run", "-n", "package", "-k", "dev", "-t", "ed25519", "-m", "src", "-p", "app.tar", "manifest.json", "--",
		"sh", "-c", `tar cf app.tar src && printf '{"schemaVersion":2,"tar":"%s"}' "$(sha256sum app.tar | cut -d' ' -f1)" > manifest.json`)
	w.write("layout.py", pythonUntarLayout)
	w.run(systemPython, "layout.py")
	w.run("in-toto-sign", "-f", "root.layout", "-k", "owner", "-t", "ed25519")
	manifest := w.read("manifest.json")

	_, err := Verify(context.Background(), Input{
		Layout: w.read("root.layout"), LayoutKeys: [][]byte{w.read("owner.pub")},
		Links:       [][]byte{w.glob("clone.*.link"), w.glob("package.*.link")},
		SubjectName: "manifest.json", SubjectSHA256: sha256Hex(manifest), Now: time.Now(),
	})
	want := `inspection "untar" (run "tar xf app.tar") cannot be evaluated without running it, so it fails closed: ` +
		`expected_materials rule "MATCH app.tar WITH PRODUCTS FROM package": it refers to app.tar, not to the subject manifest.json`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Verify: %v\nwant a denial containing %q", err, want)
	}

	// The reference verifier, with layout, key and links elsewhere and a
	// working directory holding only the subject.
	verify := func(files ...string) ([]byte, error) {
		dir := t.TempDir()
		for _, name := range files {
			if err := os.WriteFile(filepath.Join(dir, name), w.read(name), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		v := &pythonWorkdir{t: t, dir: dir}
		return v.output("in-toto-verify", "-l", filepath.Join(w.dir, "root.layout"), "-k", filepath.Join(w.dir, "owner.pub"),
			"-t", "ed25519", "--link-dir", w.dir)
	}
	if out, err := verify("manifest.json"); err == nil {
		t.Fatalf("in-toto-verify in a directory holding only manifest.json passed:\n%s", out)
	}
	// Sanity: the layout is sound when the inspection really runs.
	if out, err := verify("manifest.json", "app.tar"); err != nil {
		t.Fatalf("in-toto-verify with app.tar present: %v\n%s", err, out)
	}
}
