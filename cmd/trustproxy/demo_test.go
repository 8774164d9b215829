package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
)

// The demo is the README's first command: it must do what it prints.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, []string{"--listen", "127.0.0.1:0", "--dir", t.TempDir(), "--log-level", "error"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var addr, signedMoved string
	var printed []string
	for sc.Scan() {
		line := sc.Text()
		printed = append(printed, line)
		if a, ok := strings.CutPrefix(line, "trustproxy demo: listening on "); ok {
			addr = a
		}
		if strings.Contains(line, "the signed one") {
			signedMoved = strings.Fields(line)[1]
			signedMoved = strings.TrimSuffix(signedMoved, ":")
		}
		if strings.HasPrefix(line, "Press Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if addr == "" {
		t.Fatalf("demo did not start: %v", <-done)
	}
	checkREADMEQuickStart(t, addr, printed)
	opts := []crane.Option{crane.Insecure}
	if _, err := crane.Pull(addr+"/demo/hello:1.0", opts...); err != nil {
		t.Fatalf("signed image: %v", err)
	}
	if _, err := crane.Manifest(addr+"/demo/unsigned:1.0", opts...); err == nil || !strings.Contains(err.Error(), "no target") {
		t.Fatalf("unsigned image: %v", err)
	}
	d, err := crane.Digest(addr+"/demo/moved:1.0", opts...)
	if err != nil || d != signedMoved {
		t.Fatalf("re-pushed tag: %s %v, want the signed %s", d, err, signedMoved)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("demo did not stop")
	}
}

// checkREADMEQuickStart: every command of the README's Quick start table is
// one the demo printed, up to the address and the placeholders the README
// explains (<re-pushed digest>, <printed path>).
func checkREADMEQuickStart(t *testing.T, addr string, printed []string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section, _, _ := strings.Cut(string(b)[strings.Index(string(b), "## Quick start"):], "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
	rows := row.FindAllStringSubmatch(section, -1)
	if len(rows) < 5 {
		t.Fatalf("README Quick start table has %d commands", len(rows))
	}
	for _, r := range rows {
		pat := regexp.QuoteMeta(strings.ReplaceAll(r[1], "127.0.0.1:5000", addr))
		pat = strings.NewReplacer(regexp.QuoteMeta("<re-pushed digest>"), `sha256:[0-9a-f]{64}`,
			regexp.QuoteMeta("<printed path>"), `\S+`,
			regexp.QuoteMeta("./trustproxy "), `(\./trustproxy|go run \./cmd/trustproxy) `).Replace(pat)
		re := regexp.MustCompile(`^\s*` + pat + `$`)
		found := false
		for _, line := range printed {
			found = found || re.MatchString(line)
		}
		if !found {
			t.Errorf("README Quick start command %q is not what the demo prints:\n%s", r[1], strings.Join(printed, "\n"))
		}
	}
}
