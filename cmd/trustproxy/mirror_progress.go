package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/trustproxy/trustproxy/mirror"
)

// progressView shows a mirror command's progress on w: on a terminal, a
// bar redrawn in place on one line; otherwise a line every few seconds;
// with --json, one JSON object per line (the same cadence) for automation.
type progressView struct {
	w     io.Writer
	what  string
	style progressStyle
	now   func() time.Time
	every time.Duration // between lines (bar: between redraws)

	mu          sync.Mutex
	start, last time.Time
	p           mirror.Progress
	width       int // of the bar line on screen, to blank a shorter one
	pending     bool
}

type progressStyle int

const (
	styleLines progressStyle = iota
	styleBar
	styleJSON
)

// newProgressView picks the style for w: a bar if w is a terminal.
func newProgressView(w io.Writer, what string, asJSON bool) *progressView {
	style := styleLines
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		style = styleBar
	}
	if asJSON {
		style = styleJSON
	}
	return newProgressViewStyle(w, what, style, time.Now)
}

func newProgressViewStyle(w io.Writer, what string, style progressStyle, now func() time.Time) *progressView {
	every := 2 * time.Second
	if style == styleBar {
		every = 100 * time.Millisecond
	}
	t := now()
	return &progressView{w: w, what: what, style: style, now: now, every: every, start: t, last: t}
}

// update takes the latest counts; it draws at most once per interval.
func (v *progressView) update(p mirror.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.p, v.pending = p, true
	if t := v.now(); t.Sub(v.last) >= v.every {
		v.last = t
		v.draw(t)
	}
}

// finish draws the final counts (and ends the bar's line).
func (v *progressView) finish() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.pending && v.width == 0 {
		return // nothing was ever reported
	}
	v.draw(v.now())
	if v.style == styleBar {
		fmt.Fprintln(v.w)
	}
}

func (v *progressView) draw(t time.Time) {
	p := v.p
	v.pending = false
	secs := t.Sub(v.start).Seconds()
	var rate float64 // bytes per second
	if secs > 0 {
		rate = float64(p.Bytes) / secs
	}
	var eta time.Duration
	haveETA := p.TotalBytes > 0 && rate > 0 && p.Bytes < p.TotalBytes
	if haveETA {
		eta = time.Duration(float64(p.TotalBytes-p.Bytes) / rate * float64(time.Second)).Round(time.Second)
	}
	switch v.style {
	case styleJSON:
		line := struct {
			What string `json:"progress"`
			mirror.Progress
			BytesPerSecond int64   `json:"bytesPerSecond"`
			ETASeconds     float64 `json:"etaSeconds,omitempty"`
		}{v.what, p, int64(rate), eta.Seconds()}
		b, _ := json.Marshal(line)
		fmt.Fprintf(v.w, "%s\n", b)
	case styleLines:
		fmt.Fprintf(v.w, "%s: %s\n", v.what, progressText(p, rate, eta, haveETA))
	case styleBar:
		line := v.what + " " + progressBar(p, 24) + " " + progressText(p, rate, eta, haveETA)
		pad := ""
		if n := len(line); n < v.width {
			pad = strings.Repeat(" ", v.width-n)
		}
		v.width = len(line)
		fmt.Fprintf(v.w, "\r%s%s", line, pad)
	}
}

// progressBar is "[#####-----]  50%", or "[   ...   ]" while the total is unknown.
func progressBar(p mirror.Progress, width int) string {
	if p.TotalBytes <= 0 {
		return "[" + strings.Repeat(" ", width) + "]     "
	}
	frac := min(float64(p.Bytes)/float64(p.TotalBytes), 1)
	full := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %3.0f%%", strings.Repeat("#", full), strings.Repeat("-", width-full), frac*100)
}

func progressText(p mirror.Progress, rate float64, eta time.Duration, haveETA bool) string {
	var b strings.Builder
	if p.TotalBytes > 0 {
		fmt.Fprintf(&b, "%s / %s", mib(float64(min(p.Bytes, p.TotalBytes))), mib(float64(p.TotalBytes)))
	} else {
		b.WriteString(mib(float64(p.Bytes)))
	}
	if p.TotalObjects > 0 {
		fmt.Fprintf(&b, ", %d/%d objects", min(p.Objects, p.TotalObjects), p.TotalObjects)
	} else {
		fmt.Fprintf(&b, ", %d objects", p.Objects)
	}
	fmt.Fprintf(&b, ", %s/s", mib(rate))
	if haveETA {
		fmt.Fprintf(&b, ", ETA %s", eta)
	}
	return b.String()
}

func mib(n float64) string { return fmt.Sprintf("%.1f MiB", n/(1<<20)) }
