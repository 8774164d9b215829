package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/impact"
)

// policySides is a registry with a signed, an unsigned and an unrelated
// image, a TUF repository, and a current and a proposed configuration:
// the proposal moves up/acme/** from an allow exception to enforce.
type policySides struct {
	*mirrorSides
	current, proposed string
}

func newPolicySides(t *testing.T) *policySides {
	m := newMirrorSides(t)
	m.up.PushRandomImage(t, "acme/app:1", 512, 1, types.OCIManifestSchema1)
	m.up.PushRandomImage(t, "acme/evil:1", 512, 1, types.OCIManifestSchema1)
	m.up.PushRandomImage(t, "other/tool:1", 512, 1, types.OCIManifestSchema1)
	m.sign(t, "acme/app:1")
	p := &policySides{mirrorSides: m, current: filepath.Join(m.dir, "current.yaml"), proposed: filepath.Join(m.dir, "proposed.yaml")}
	common := fmt.Sprintf(`storage: {inmemory: {}}
state: %q
upstreams: [{name: up, url: %q}]
trust: {corp: {metadata: %q, root: %q}}
`, filepath.Join(m.dir, "state"), m.up.URL, filepath.Join(m.repo, "metadata"), m.rootPath())
	writeFile(t, p.current, common+`policy:
  rules:
    - {name: acme, match: "up/acme/**", mode: allow}
    - {name: tools, match: "up/other/**", mode: allow}
`)
	writeFile(t, p.proposed, common+`policy:
  rules:
    - {name: acme-signed, match: "up/acme/**", mode: enforce, trust: corp}
    - {name: tools, match: "up/other/**", mode: allow}
    - {name: acme-app-exception, match: "up/acme/app", mode: allow}
`)
	return p
}

// recordRun serves the current configuration with trustproxy's production
// JSON logger writing to a file, pulls refs through it, and returns the log.
func (p *policySides) recordRun(t *testing.T, paths ...string) string {
	t.Helper()
	logPath := filepath.Join(p.dir, "trustproxy.log")
	c, err := loadConfig(p.current)
	if err != nil {
		t.Fatal(err)
	}
	log, err := newLoggerTo(c.Log, logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in, err := assemble(ctx, c, log)
	if err != nil {
		t.Fatal(err)
	}
	addr, stop := serveInstance(t, ctx, cancel, in)
	for _, path := range paths {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		req.Header.Set("Accept", string(types.OCIManifestSchema1))
		for i := 0; ; i++ {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				break
			}
			if i > 100 {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stop()
	_ = log.Sync()
	return logPath
}

func runPolicy(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append([]string{"policy"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestPolicyDiffFromRecordedAuditLog records the audit log of a real run
// under the current policy and replays it under the proposal: the unsigned
// image is named as newly denied with the rule and the reason, the signed
// one as changed (exception → verified), the rest unchanged; exit 2.
func TestPolicyDiffFromRecordedAuditLog(t *testing.T) {
	p := newPolicySides(t)
	log := p.recordRun(t, "/v2/up/acme/app/manifests/1", "/v2/up/acme/evil/manifests/1",
		"/v2/up/acme/evil/manifests/1", "/v2/up/other/tool/manifests/1", "/v2/up/secret/x/manifests/1")
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), `"logger":"audit"`) || !strings.Contains(string(b), `"policy_version":"sha256:`) {
		t.Fatalf("the run wrote no audit lines with a policy version:\n%s", b)
	}

	code, out, errOut := runPolicy(t, "diff", "--config", p.current, "--new", p.proposed, "--audit-log", log)
	if code != exitNewlyDenied || !strings.Contains(errOut, "would newly refuse 1 of 4 references") {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	t.Logf("policy diff:\n%s", out)
	for _, want := range []string{
		"DENIED   up/acme/evil:1  allow-exception → deny",
		`rule "acme" (allow) → "acme-signed" (enforce)`,
		`now: trustproxy: up/acme/evil:1 denied by rule "acme-signed" (trust "corp" targets v2): no target "up/acme/evil:1"`,
		"CHANGED  up/acme/app:1",
		`rule "acme" (allow) → "acme-app-exception" (allow)`,
		"4 references: 2 unchanged, 1 newly denied, 0 newly allowed, 1 changed otherwise",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "up/other/tool:1") || strings.Contains(out, "up/secret/x:1") {
		t.Errorf("unchanged references listed:\n%s", out)
	}

	code, out, _ = runPolicy(t, "diff", "--config", p.current, "--new", p.proposed, "--audit-log", log, "--json")
	var rep struct {
		References []impact.Change
		Summary    impact.Summary
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitNewlyDenied {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	want := impact.Summary{References: 4, Unchanged: 2, NewlyDenied: 1, Changed: 1}
	if rep.Summary != want {
		t.Errorf("summary %+v, want %+v", rep.Summary, want)
	}
	for _, c := range rep.References {
		if c.Reference == "up/acme/evil:1" && (c.Count < 2 || c.Kind != "newly-denied" || c.Proposed.Rule != "acme-signed") {
			t.Errorf("evil: %+v", c)
		}
	}

	// The reverse change denies nothing new: exit 0.
	if code, out, errOut := runPolicy(t, "diff", "--config", p.proposed, "--new", p.current, "--audit-log", log); code != 0 ||
		!strings.Contains(out, "ALLOWED  up/acme/evil:1  deny → allow-exception") {
		t.Errorf("reverse: exit %d %s\n%s", code, errOut, out)
	}
	// A list of references instead of a log.
	list := filepath.Join(p.dir, "refs.txt")
	writeFile(t, list, "# served last week\nup/acme/app:1\n\nup/other/tool:1\n")
	if code, out, errOut := runPolicy(t, "diff", "--config", p.current, "--new", p.proposed, "--refs", list); code != 0 ||
		!strings.Contains(out, "2 references: 1 unchanged, 0 newly denied, 0 newly allowed, 1 changed otherwise") {
		t.Errorf("list: exit %d %s\n%s", code, errOut, out)
	}
	// A file that is no audit log is an error, not an empty diff.
	if code, _, errOut := runPolicy(t, "diff", "--config", p.current, "--new", p.proposed, "--audit-log", list); code != 1 ||
		!strings.Contains(errOut, "holds no decision lines") {
		t.Errorf("not a log: exit %d %s", code, errOut)
	}
}

// TestPolicyExplain shows every rule in the order tried, why each one that
// does not govern does not, and the decision with its reason.
func TestPolicyExplain(t *testing.T) {
	p := newPolicySides(t)
	code, out, errOut := runPolicy(t, "explain", "--config", p.proposed, "up/acme/evil:1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"policy:     sha256:",
		"* acme-signed",
		"governs up/acme/evil",
		`    acme-app-exception  up/acme/app  allow                 segment 3: "evil" does not match "app"`,
		`    tools               up/other/**  allow                 segment 2: "acme" does not match "other"`,
		`  * acme-signed         up/acme/**   enforce (trust corp)  governs up/acme/evil`,
		`decision: deny by rule "acme-signed"`,
		`reason: trustproxy: up/acme/evil:1 denied by rule "acme-signed" (trust "corp" targets v2): no target "up/acme/evil:1"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runPolicy(t, "explain", "--config", p.proposed, "up/acme/app:1", "--json")
	var ex struct {
		Rules []struct {
			Rule, Why string
			Matched   bool
		}
		Decision impact.Outcome
	}
	if err := json.Unmarshal([]byte(out), &ex); err != nil || code != 0 {
		t.Fatalf("--json: %d %v\n%s", code, err, out)
	}
	if len(ex.Rules) != 3 || ex.Rules[0].Rule != "acme-app-exception" || !ex.Rules[0].Matched ||
		!strings.Contains(ex.Rules[2].Why, `rule "acme-app-exception" (up/acme/app) is more specific`) || ex.Decision.Verdict != impact.AllowException {
		t.Errorf("explain --json: %+v", ex)
	}
	if code, _, errOut := runPolicy(t, "explain", "--config", p.proposed, "nowhere/x:1"); code != 1 || !strings.Contains(errOut, "names no configured upstream") {
		t.Errorf("unknown upstream: %d %s", code, errOut)
	}
}
