package intoto

import (
	"errors"
	"fmt"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
)

// Limits bound what one verification reads, so that a hostile or broken
// trust repository cannot make the proxy download, parse or hash without end.
// They are per rule (policy.rules[].inToto.limits); a zero field means its
// default. The caller checks counts and byte lengths it knows from TUF before
// downloading anything (CheckLayoutLimits for the layout's step count);
// Verify checks them again on what it is given.
type Limits struct {
	// MaxSteps bounds the layout's steps (default 64).
	MaxSteps int `json:"maxSteps"`
	// MaxInspections bounds the layout's inspections (default 64).
	MaxInspections int `json:"maxInspections"`
	// MaxLinks bounds the link files of one artifact (default 256).
	MaxLinks int `json:"maxLinks"`
	// MaxLayoutKeys bounds the layout (owner) keys (default 32).
	MaxLayoutKeys int `json:"maxLayoutKeys"`
	// MaxParameters bounds the parameters substituted into the layout
	// (default 64).
	MaxParameters int `json:"maxParameters"`
	// MaxMetadataBytes bounds one layout or link file (default 1 MiB). The
	// indented JSON in-toto writes is several times its compact form, and
	// signatures cover canonical JSON, so a layout re-written compactly
	// verifies the same.
	MaxMetadataBytes int64 `json:"maxMetadataBytes"`
}

// DefaultLimits are the limits of a rule that sets none.
func DefaultLimits() Limits {
	return Limits{MaxSteps: 64, MaxInspections: 64, MaxLinks: 256, MaxLayoutKeys: 32, MaxParameters: 64,
		MaxMetadataBytes: 1 << 20}
}

// maxKeyBytes bounds one public key file; a PEM RSA-8192 key is under 2 KiB.
const maxKeyBytes = 64 << 10

// WithDefaults fills the zero fields of l with the defaults.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxSteps == 0 {
		l.MaxSteps = d.MaxSteps
	}
	if l.MaxInspections == 0 {
		l.MaxInspections = d.MaxInspections
	}
	if l.MaxLinks == 0 {
		l.MaxLinks = d.MaxLinks
	}
	if l.MaxLayoutKeys == 0 {
		l.MaxLayoutKeys = d.MaxLayoutKeys
	}
	if l.MaxParameters == 0 {
		l.MaxParameters = d.MaxParameters
	}
	if l.MaxMetadataBytes == 0 {
		l.MaxMetadataBytes = d.MaxMetadataBytes
	}
	return l
}

// Validate rejects negative limits.
func (l Limits) Validate() error {
	for _, v := range []struct {
		name string
		n    int64
	}{{"maxSteps", int64(l.MaxSteps)}, {"maxInspections", int64(l.MaxInspections)}, {"maxLinks", int64(l.MaxLinks)},
		{"maxLayoutKeys", int64(l.MaxLayoutKeys)}, {"maxParameters", int64(l.MaxParameters)}, {"maxMetadataBytes", l.MaxMetadataBytes}} {
		if v.n < 0 {
			return fmt.Errorf("%s: %d is negative", v.name, v.n)
		}
	}
	return nil
}

// LimitError is a denial because something is larger than a limit allows:
// not malformed, only more than this rule accepts.
type LimitError struct {
	What    string // "the layout has 200 steps"
	Limit   int64
	Unit    string // "steps"
	Setting string // "maxSteps"
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("over a limit: %s, the limit is %d %s (raise it with the rule's inToto.limits.%s)",
		e.What, e.Limit, e.Unit, e.Setting)
}

// IsLimit reports whether err is a LimitError.
func IsLimit(err error) bool {
	var le *LimitError
	return errors.As(err, &le)
}

func checkCount(n, limit int, what, unit, setting string) error {
	if n > limit {
		return &LimitError{What: fmt.Sprintf("%s %d %s", what, n, unit), Limit: int64(limit), Unit: unit, Setting: setting}
	}
	return nil
}

// CheckMetadataSize checks one layout or link file's length, from TUF before
// downloading or from the bytes.
func (l Limits) CheckMetadataSize(name string, n int64) error {
	l = l.WithDefaults()
	if n > l.MaxMetadataBytes {
		return &LimitError{What: fmt.Sprintf("%s is %d bytes", name, n), Limit: l.MaxMetadataBytes, Unit: "bytes",
			Setting: "maxMetadataBytes"}
	}
	return nil
}

// CheckLinkCount checks the number of link files of one artifact.
func (l Limits) CheckLinkCount(n int) error {
	return checkCount(n, l.WithDefaults().MaxLinks, "the artifact lists", "links", "maxLinks")
}

// CheckLayoutKeyCount checks the number of layout keys.
func (l Limits) CheckLayoutKeyCount(n int) error {
	return checkCount(n, l.WithDefaults().MaxLayoutKeys, "there are", "layout keys", "maxLayoutKeys")
}

// CheckLayoutLimits reads a layout's step and inspection counts, so the
// caller can refuse a layout over the limits before downloading its links.
// Nothing is verified here: Verify checks the signature and the same limits.
func CheckLayoutLimits(layout []byte, l Limits) error {
	l = l.WithDefaults()
	if err := l.CheckMetadataSize("the layout", int64(len(layout))); err != nil {
		return err
	}
	md, err := parseMetadata(layout)
	if err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	lay, ok := md.GetPayload().(in_toto.Layout)
	if !ok {
		return errors.New("layout: the root layout file holds a link, not a layout")
	}
	return l.checkLayout(lay)
}

func (l Limits) checkLayout(lay in_toto.Layout) error {
	if err := checkCount(len(lay.Steps), l.MaxSteps, "the layout has", "steps", "maxSteps"); err != nil {
		return err
	}
	return checkCount(len(lay.Inspect), l.MaxInspections, "the layout has", "inspections", "maxInspections")
}
