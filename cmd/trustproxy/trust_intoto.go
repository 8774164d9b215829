package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/trustproxy/trustproxy/policy/intoto"
)

// inTotoFlags attach in-toto metadata to a target as CNAB Security 301
// lays it out: the layout, its public keys and the links become targets of
// their own, listed in the artifact target's custom "in-toto".
type inTotoFlags struct {
	layout  string
	links   string
	pubkeys trustStrings
}

func (f *inTotoFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.layout, "in-toto-layout", "", "in-toto root layout `FILE` to publish with the target")
	fs.StringVar(&f.links, "in-toto-links", "", "`DIR` of in-toto link files (*.link) for this artifact")
	fs.Var(&f.pubkeys, "in-toto-pubkey", "layout public key `FILE` (PEM or securesystemslib JSON; repeatable)")
}

// Sizes beyond which a file is surely not in-toto metadata.
const maxInTotoFile = 1 << 20

// plan adds the in-toto targets to req. repo is the artifact's trust name
// (e.g. docker.io/acme/app).
func (f *inTotoFlags) plan(req *trustAddRequest, repo string) error {
	if f.layout == "" {
		if f.links != "" || len(f.pubkeys) > 0 {
			return fmt.Errorf("--in-toto-links and --in-toto-pubkey need --in-toto-layout")
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
	for _, p := range f.pubkeys {
		b, err := read(p)
		if err != nil {
			return fmt.Errorf("--in-toto-pubkey: %w", err)
		}
		k, err := intoto.ParsePublicKey(b)
		if err != nil {
			return fmt.Errorf("--in-toto-pubkey %s: %w", p, err)
		}
		name := repo + "/in-toto-pubkeys/" + k.KeyID + ".pub"
		keyTargets = append(keyTargets, name)
		req.extra = append(req.extra, trustExtraTarget{name: name, data: b})
	}
	layout, err := read(f.layout)
	if err != nil {
		return fmt.Errorf("--in-toto-layout: %w", err)
	}
	layoutName := repo + "/in-toto-metadata/root.layout"
	layoutCustom := map[string]any{}
	if len(keyTargets) > 0 {
		layoutCustom["in-toto"] = keyTargets
	}
	req.extra = append(req.extra, trustExtraTarget{name: layoutName, data: layout, custom: layoutCustom})
	listed := []string{layoutName}

	subject := req.desc.SHA256()
	if req.bundleJSON != "" {
		subject = req.bundleJSON.Encoded() // in-toto's subject of a bundle is bundle.json
	}
	if f.links != "" {
		paths, err := filepath.Glob(filepath.Join(f.links, "*.link"))
		if err != nil {
			return err
		}
		if len(paths) == 0 {
			return fmt.Errorf("--in-toto-links %s: no *.link files", f.links)
		}
		sort.Strings(paths)
		for _, p := range paths {
			b, err := read(p)
			if err != nil {
				return fmt.Errorf("--in-toto-links: %w", err)
			}
			name := repo + "/in-toto-metadata/" + subject + "/" + filepath.Base(p)
			req.extra = append(req.extra, trustExtraTarget{name: name, data: b})
			listed = append(listed, name)
		}
	}
	req.custom["in-toto"] = listed
	return nil
}

// tagOf is the tag of a target name "<trust name>:<tag>"; a registry port
// in the trust name is not a tag.
func tagOf(target string) string {
	i := strings.LastIndex(target, ":")
	if i < 0 || strings.Contains(target[i:], "/") {
		return ""
	}
	return target[i+1:]
}
