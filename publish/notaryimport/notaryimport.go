// Package notaryimport migrates a GUN's Notary v1 trust data (Docker
// Content Trust, Signy) into a standard TUF repository written with
// trustproxy's publisher, so the Notary server can be retired and every
// signed tag stays verifiable under the organisation's own keys.
//
// Nothing is taken on trust: the Notary metadata is verified against a
// pinned root by trustfetch/notary (the same source trustproxy serves
// from), Signy's inline in-toto payloads are verified without running
// anything for the very subject the tag signs and only with a layout key
// the caller pins, and whatever does not verify is reported as refused
// instead of migrated.
package notaryimport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/trustproxy/trustproxy/policy/intoto"
	"github.com/trustproxy/trustproxy/publish"
	"github.com/trustproxy/trustproxy/trustfetch"
	"github.com/trustproxy/trustproxy/trustfetch/notary"
)

// bundleMediaType is how the Notary source marks bundle.json targets.
const bundleMediaType = "application/vnd.cnab.config.v1+json"

// Options say what to migrate and how.
type Options struct {
	// GUN is the Notary collection, e.g. registry.example/acme/app.
	GUN string
	// TrustName is the trust name of the migrated targets
	// ("<TrustName>:<tag>"); "" keeps the GUN.
	TrustName string
	// Role is the publisher's targets role for the tags; "" is the most
	// specific role delegated the name, else targets.
	Role string
	// LayoutKeys pin the layout keys Signy payloads may carry (PEM or
	// securesystemslib JSON). A payload whose key is not among them is
	// refused, with its tag.
	LayoutKeys [][]byte
	// Now is the clock for layout expiry; nil means time.Now.
	Now func() time.Time
}

// Migrated is one tag written to the TUF repository.
type Migrated struct {
	Tag    string
	Target string
	SHA256 string
	Length int64
	// InToto lists the in-toto targets staged for it (layout, links, key).
	InToto []string
}

// Refused is one tag left behind, and why.
type Refused struct {
	Tag    string
	Reason string
}

// Report is what one migration did.
type Report struct {
	GUN      string
	Migrated []Migrated
	Refused  []Refused
}

// Import verifies opts.GUN through src and stages its tags in repo. The
// caller publishes (repo.Publish) to sign them with the organisation's keys.
// An error means the GUN's trust data did not verify: nothing was staged.
func Import(ctx context.Context, src *notary.Source, repo *publish.Repo, o Options) (*Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	trustName := o.TrustName
	if trustName == "" {
		trustName = o.GUN
	}
	ix, err := src.IndexFor(ctx, o.GUN)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", o.GUN, err)
	}
	rep := &Report{GUN: o.GUN}
	im := importer{repo: repo, opts: o, trustName: trustName, layouts: map[string][]byte{}}
	for _, name := range ix.Names() {
		t, _ := ix.Lookup(name)
		tag := strings.TrimPrefix(name, o.GUN+":")
		m, err := im.target(ctx, tag, t)
		if err != nil {
			rep.Refused = append(rep.Refused, Refused{Tag: tag, Reason: err.Error()})
			continue
		}
		rep.Migrated = append(rep.Migrated, m)
	}
	for _, s := range src.Skipped(o.GUN) {
		rep.Refused = append(rep.Refused, Refused{Tag: s.Tag, Reason: s.Reason})
	}
	return rep, nil
}

type importer struct {
	repo      *publish.Repo
	opts      Options
	trustName string
	// layouts are the root layouts staged so far, by target name: spec 301
	// has one per repository, so two tags may not bring different ones.
	layouts map[string][]byte
}

// target stages one tag: its hash and length, its custom data (without a
// Signy payload), and Signy's in-toto as spec-301 targets.
func (im *importer) target(ctx context.Context, tag string, t trustfetch.Target) (Migrated, error) {
	custom := map[string]any{}
	if len(t.Custom) > 0 && string(t.Custom) != "null" {
		if err := json.Unmarshal(t.Custom, &custom); err != nil {
			return Migrated{}, fmt.Errorf("custom data is not a JSON object: %w", err)
		}
	}
	m := Migrated{Tag: tag, Target: im.trustName + ":" + tag, SHA256: t.SHA256, Length: t.Length}
	p, err := intoto.ParseSignyPayload(t.Custom)
	if err != nil {
		return Migrated{}, err
	}
	var extra []staged
	if p != nil {
		if extra, err = im.signy(ctx, p, t); err != nil {
			return Migrated{}, err
		}
		delete(custom, "key")
		delete(custom, "layout")
		delete(custom, "links")
		for _, e := range extra {
			if e.listed {
				m.InToto = append(m.InToto, e.name)
			}
		}
		custom["in-toto"] = m.InToto
	}
	for _, e := range extra {
		if _, err := im.repo.AddTargetFile("", e.name, bytes.NewReader(e.data), e.custom); err != nil {
			return Migrated{}, err
		}
	}
	if _, err := im.repo.AddTarget(im.opts.Role, m.Target, t.Length, t.SHA256, custom); err != nil {
		return Migrated{}, err
	}
	return m, nil
}

// staged is an in-toto file to publish as a target; listed ones go in the
// tag's custom "in-toto".
type staged struct {
	name   string
	data   []byte
	custom map[string]any
	listed bool
}

// signy verifies a Signy payload for the tag's subject and lays it out as
// CNAB Security 301 does: <repo>/in-toto-pubkeys/<keyid>.pub,
// <repo>/in-toto-metadata/root.layout (custom "in-toto" lists the key) and
// <repo>/in-toto-metadata/<subject sha256>/<link>.
func (im *importer) signy(ctx context.Context, p *intoto.SignyPayload, t trustfetch.Target) ([]staged, error) {
	pinned, err := p.PinnedKey(im.opts.LayoutKeys)
	if err != nil {
		return nil, err
	}
	if pinned == nil {
		return nil, fmt.Errorf("its Signy in-toto payload's layout key is not one of the pinned layout keys")
	}
	subject := "manifest.json"
	if t.MediaType() == bundleMediaType {
		subject = "bundle.json"
	}
	in := p.Input(pinned, subject, t.SHA256)
	in.Now = im.opts.Now()
	if _, err := intoto.Verify(ctx, in); err != nil {
		return nil, fmt.Errorf("its Signy in-toto payload does not verify for %s sha256:%s: %w", subject, t.SHA256, err)
	}
	key, err := intoto.ParsePublicKey(p.Key)
	if err != nil {
		return nil, err
	}
	keyName := im.trustName + "/in-toto-pubkeys/" + key.KeyID + ".pub"
	layoutName := im.trustName + "/in-toto-metadata/root.layout"
	if prev, ok := im.layouts[layoutName]; ok && !bytes.Equal(prev, p.Layout) {
		return nil, fmt.Errorf("its Signy payload brings a root layout different from another tag's; CNAB Security 301 has one %s", layoutName)
	}
	im.layouts[layoutName] = p.Layout
	out := []staged{
		{name: keyName, data: p.Key},
		{name: layoutName, data: p.Layout, custom: map[string]any{"in-toto": []string{keyName}}, listed: true},
	}
	for _, n := range p.LinkNames() {
		if strings.ContainsAny(n, "/\\") || !strings.HasSuffix(n, ".link") {
			return nil, fmt.Errorf("its Signy payload has a link named %q (want <step>.<keyid>.link)", n)
		}
		out = append(out, staged{name: im.trustName + "/in-toto-metadata/" + t.SHA256 + "/" + n, data: p.Links[n], listed: true})
	}
	return out, nil
}
