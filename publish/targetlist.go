package publish

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// TargetLine is one line of a target list (ReadTargetList): what a script
// that signs every tag of every repository has at hand, e.g. from
// `crane digest` and the manifest's size and media type.
type TargetLine struct {
	// Name is the target name, <registry>/<repository>:<tag>.
	Name string `json:"name"`
	// Digest is "sha256:<hex>", the manifest digest (or use SHA256).
	Digest string `json:"digest,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Length is the manifest's size in bytes.
	Length int64 `json:"length"`
	// MediaType is the manifest's media type, stored as custom mediaType.
	MediaType string `json:"mediaType,omitempty"`
	// Custom is further custom metadata.
	Custom map[string]any `json:"custom,omitempty"`
}

// maxTargetLine bounds one line of a target list.
const maxTargetLine = 1 << 20

// ReadTargetList reads JSON lines, one TargetLine each (blank lines and
// lines starting with '#' are skipped), for AddTargets. Errors name the
// line.
func ReadTargetList(r io.Reader) ([]NewTarget, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxTargetLine)
	var out []NewTarget
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var tl TargetLine
		if err := dec.Decode(&tl); err != nil {
			return nil, fmt.Errorf("target list line %d: %w", n, err)
		}
		t, err := tl.target()
		if err != nil {
			return nil, fmt.Errorf("target list line %d: %w", n, err)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read target list: %w", err)
	}
	return out, nil
}

func (tl TargetLine) target() (NewTarget, error) {
	if tl.Name == "" {
		return NewTarget{}, fmt.Errorf("no name")
	}
	sum := tl.SHA256
	if tl.Digest != "" {
		hexPart, ok := strings.CutPrefix(tl.Digest, "sha256:")
		if !ok || (sum != "" && sum != hexPart) {
			return NewTarget{}, fmt.Errorf("%s: digest %q: want sha256:<hex> (matching sha256 if both are given)", tl.Name, tl.Digest)
		}
		sum = hexPart
	}
	if sum == "" {
		return NewTarget{}, fmt.Errorf("%s: no digest", tl.Name)
	}
	custom := tl.Custom
	if tl.MediaType != "" {
		if _, ok := custom["mediaType"]; ok {
			return NewTarget{}, fmt.Errorf("%s: mediaType given twice", tl.Name)
		}
		custom = make(map[string]any, len(tl.Custom)+1)
		for k, v := range tl.Custom {
			custom[k] = v
		}
		custom["mediaType"] = tl.MediaType
	}
	return NewTarget{Name: tl.Name, Length: tl.Length, SHA256: sum, Custom: custom}, nil
}
