package intoto

import (
	"encoding/json"
	"fmt"
	"sort"
)

// SignyPayload is the in-toto metadata Signy (cnabio/signy
// pkg/intoto/metadata.go) puts inline in a Notary target's custom data:
// the layout's public key (PEM), the signed root layout and the link files
// by name, each as base64 bytes. It is not the CNAB Security spec-301
// layout, which names separate TUF targets.
type SignyPayload struct {
	Key    []byte            `json:"key"`
	Layout []byte            `json:"layout"`
	Links  map[string][]byte `json:"links"`
}

// ParseSignyPayload returns the Signy payload of a target's custom data,
// nil if it carries none (no "layout").
func ParseSignyPayload(custom json.RawMessage) (*SignyPayload, error) {
	var probe struct {
		Layout json.RawMessage `json:"layout"`
	}
	if len(custom) == 0 || json.Unmarshal(custom, &probe) != nil || len(probe.Layout) == 0 {
		return nil, nil
	}
	var p SignyPayload
	if err := json.Unmarshal(custom, &p); err != nil {
		return nil, fmt.Errorf("Signy in-toto payload: %w", err)
	}
	if len(p.Layout) == 0 || len(p.Key) == 0 {
		return nil, fmt.Errorf("Signy in-toto payload: layout and key are both required")
	}
	return &p, nil
}

// LinkNames returns the payload's link file names, sorted.
func (p *SignyPayload) LinkNames() []string {
	names := make([]string, 0, len(p.Links))
	for n := range p.Links {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PinnedKey returns the pinned key (one of pinned) that is the payload's
// layout key, nil if none is: the inline key ships in the payload it would
// vouch for, so only a pin makes it trustworthy.
func (p *SignyPayload) PinnedKey(pinned [][]byte) ([]byte, error) {
	for _, k := range pinned {
		same, err := SameKey(p.Key, k)
		if err != nil {
			return nil, fmt.Errorf("Signy layout key: %w", err)
		}
		if same {
			return k, nil
		}
	}
	return nil, nil
}

// Input is the verification input for subject: the pinned layout key, the
// layout and the links, sorted by name.
func (p *SignyPayload) Input(pinnedKey []byte, subjectName, subjectSHA256 string) Input {
	in := Input{Layout: p.Layout, LayoutKeys: [][]byte{pinnedKey}, SubjectName: subjectName, SubjectSHA256: subjectSHA256}
	for _, n := range p.LinkNames() {
		in.Links = append(in.Links, p.Links[n])
	}
	return in
}
