package publish

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/trustproxy/trustproxy/policy/intoto"
)

// InTotoFiles attach in-toto metadata to a target as CNAB Security 301 lays
// it out: the layout, its public keys and the links become targets of their
// own, listed in the artifact target's custom "in-toto".
type InTotoFiles struct {
	// Layout is the root layout file; without it nothing is attached.
	Layout string
	// Links is a directory of *.link files for this artifact.
	Links string
	// PubKeys are the layout's public key files (PEM or securesystemslib JSON).
	PubKeys []string
}

// maxInTotoFile is the size beyond which a file is surely not in-toto
// metadata. The proxy's own per-file limit (inToto.limits.maxMetadataBytes,
// 1 MiB by default) applies to what is published: the compact form.
const maxInTotoFile = 64 << 20

// compactMetadata is an in-toto layout or link without insignificant
// whitespace. in-toto dumps metadata indented, several times its compact
// size; signatures cover the canonical JSON of "signed" (or the DSSE payload,
// which is base64 inside the envelope), so the compact file verifies the
// same and stays within the proxy's per-file limit for far larger layouts.
func compactMetadata(path string, b []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, fmt.Errorf("%s is not JSON in-toto metadata: %w", path, err)
	}
	return buf.Bytes(), nil
}

// plan adds the in-toto targets to p. repo is the artifact's trust name
// (e.g. docker.io/acme/app).
func (f InTotoFiles) plan(p *AddPlan, repo string) error {
	if f.Layout == "" {
		if f.Links != "" || len(f.PubKeys) > 0 {
			return fmt.Errorf("in-toto links and public keys need an in-toto layout")
		}
		return nil
	}
	read := func(path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if len(b) > maxInTotoFile {
			return nil, fmt.Errorf("%s: %d bytes is more than the %d allowed", path, len(b), maxInTotoFile)
		}
		return b, nil
	}
	var keyTargets []string
	for _, path := range f.PubKeys {
		b, err := read(path)
		if err != nil {
			return fmt.Errorf("in-toto public key: %w", err)
		}
		k, err := intoto.ParsePublicKey(b)
		if err != nil {
			return fmt.Errorf("in-toto public key %s: %w", path, err)
		}
		name := repo + "/in-toto-pubkeys/" + k.KeyID + ".pub"
		keyTargets = append(keyTargets, name)
		p.extra = append(p.extra, extraTarget{name: name, data: b})
	}
	layout, err := read(f.Layout)
	if err == nil {
		layout, err = compactMetadata(f.Layout, layout)
	}
	if err != nil {
		return fmt.Errorf("in-toto layout: %w", err)
	}
	layoutName := repo + "/in-toto-metadata/root.layout"
	layoutCustom := map[string]any{}
	if len(keyTargets) > 0 {
		layoutCustom["in-toto"] = keyTargets
	}
	p.extra = append(p.extra, extraTarget{name: layoutName, data: layout, custom: layoutCustom})
	listed := []string{layoutName}

	subject := p.Desc.SHA256()
	if p.bundleJSON != "" {
		subject = p.bundleJSON.Encoded() // in-toto's subject of a bundle is bundle.json
	}
	if f.Links != "" {
		paths, err := filepath.Glob(filepath.Join(f.Links, "*.link"))
		if err != nil {
			return err
		}
		if len(paths) == 0 {
			return fmt.Errorf("in-toto links %s: no *.link files", f.Links)
		}
		sort.Strings(paths)
		for _, path := range paths {
			b, err := read(path)
			if err == nil {
				b, err = compactMetadata(path, b)
			}
			if err != nil {
				return fmt.Errorf("in-toto links: %w", err)
			}
			name := repo + "/in-toto-metadata/" + subject + "/" + filepath.Base(path)
			p.extra = append(p.extra, extraTarget{name: name, data: b})
			listed = append(listed, name)
		}
	}
	p.custom["in-toto"] = listed
	return nil
}
