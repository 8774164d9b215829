package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trustproxy/trustproxy/mirror"
)

// fakeClock is the injected clock of a progress view.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestProgressView renders each style from injected counts and clock.
func TestProgressView(t *testing.T) {
	const mb = 1 << 20
	steps := []struct {
		after time.Duration
		p     mirror.Progress
	}{
		{50 * time.Millisecond, mirror.Progress{Objects: 0, Bytes: 1 * mb}},                                      // too soon: not drawn
		{time.Second, mirror.Progress{Objects: 1, Bytes: 10 * mb, TotalObjects: 4, TotalBytes: 40 * mb}},         // 10 MiB/s
		{3 * time.Second, mirror.Progress{Objects: 3, Bytes: 30 * mb, TotalObjects: 4, TotalBytes: 40 * mb}},     // 10 MiB/s, 1s left
		{4 * time.Second, mirror.Progress{Objects: 6, Bytes: 40*mb + 900, TotalObjects: 4, TotalBytes: 40 * mb}}, // trust files past the total
	}
	for _, c := range []struct {
		style progressStyle
		want  string
	}{
		{styleBar, "\rexport [######------------------]  25% 10.0 MiB / 40.0 MiB, 1/4 objects, 10.0 MiB/s, ETA 3s" +
			"\rexport [##################------]  75% 30.0 MiB / 40.0 MiB, 3/4 objects, 10.0 MiB/s, ETA 1s" +
			"\rexport [########################] 100% 40.0 MiB / 40.0 MiB, 4/4 objects, 10.0 MiB/s        " +
			"\rexport [########################] 100% 40.0 MiB / 40.0 MiB, 4/4 objects, 10.0 MiB/s\n"},
		{styleLines, "export: 30.0 MiB / 40.0 MiB, 3/4 objects, 10.0 MiB/s, ETA 1s\n" +
			"export: 40.0 MiB / 40.0 MiB, 4/4 objects, 10.0 MiB/s\n"},
	} {
		clk := &fakeClock{t: time.Unix(1000, 0)}
		var out bytes.Buffer
		v := newProgressViewStyle(&out, "export", c.style, clk.now)
		start := clk.t
		for _, s := range steps {
			clk.t = start.Add(s.after)
			v.update(s.p)
		}
		v.finish()
		if out.String() != c.want {
			t.Errorf("style %d:\n got %q\nwant %q", c.style, out.String(), c.want)
		}
	}

	clk := &fakeClock{t: time.Unix(1000, 0)}
	var out bytes.Buffer
	v := newProgressViewStyle(&out, "import", styleJSON, clk.now)
	clk.t = clk.t.Add(2 * time.Second)
	v.update(mirror.Progress{Objects: 2, Bytes: 4 * mb, TotalObjects: 4, TotalBytes: 8 * mb})
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.Split(out.String(), "\n")[0]), &line); err != nil {
		t.Fatalf("JSON progress %q: %v", out.String(), err)
	}
	if line["progress"] != "import" || line["bytes"] != float64(4*mb) || line["totalBytes"] != float64(8*mb) ||
		line["bytesPerSecond"] != float64(2*mb) || line["etaSeconds"] != float64(2) {
		t.Errorf("JSON progress = %v", line)
	}
}
