package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/attachment"
	"github.com/trustproxy/trustproxy/policy"
)

// Attachments (signatures, SBOMs, attestations) of exported subjects cross
// the gap with them. Export finds them through the proxy's referrers API
// and cosign's tags, exactly what the proxy serves; import checks each
// against the subjects it verified and loads it, then records the
// referrers tag schema's index of every subject (and cosign's tags) as tag
// hints, which an offline upstream answers the referrers API from.

// Annotations marking an attachment's entry in index.json, so that tools
// reading the layout (oras discover --oci-layout) and people see what it
// is attached to.
const (
	annotationSubject    = "io.trustproxy.attachment.subject"
	annotationRepository = "io.trustproxy.attachment.repository"
	annotationTag        = "io.trustproxy.attachment.tag"
)

// Attachment is one exported attachment, in trustproxy-mirror.json.
type Attachment struct {
	// Repository is "<upstream>/<repository>", where it is served.
	Repository string `json:"repository"`
	// Subject is the approved manifest it is attached to.
	Subject      digest.Digest `json:"subject"`
	Digest       digest.Digest `json:"digest"`
	MediaType    string        `json:"mediaType"`
	Size         int64         `json:"size"`
	ArtifactType string        `json:"artifactType,omitempty"`
	// Tag is the cosign tag (sha256-<hex>.sig, .att, .sbom) it was found
	// under, if it was found by tag rather than through the referrers API.
	Tag string `json:"tag,omitempty"`
}

// AttachmentSource is a Source that also answers for attachments: a
// subject's referrers, and a tag that may be missing.
type AttachmentSource interface {
	Referrers(ctx context.Context, upstream, repo string, subject digest.Digest) ([]ocispec.Descriptor, error)
	// Tagged returns the manifest under tag, or found false when the
	// proxy has none.
	Tagged(ctx context.Context, upstream, repo, tag string) (mediaType string, body []byte, found bool, err error)
}

// Referrers lists subject's attachments through the proxy's referrers API.
func (s HTTPSource) Referrers(ctx context.Context, upstream, repo string, subject digest.Digest) ([]ocispec.Descriptor, error) {
	resp, err := s.get(ctx, upstream, repo, "referrers", subject.String())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ix ocispec.Index
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxManifestBytes)).Decode(&ix); err != nil {
		return nil, fmt.Errorf("referrers of %s/%s@%s: %w", upstream, repo, subject, err)
	}
	return ix.Manifests, nil
}

// Tagged fetches a manifest by a tag that may not exist, or that the
// proxy does not serve (a type the rule's attachments setting excludes):
// either way there is nothing to export.
func (s HTTPSource) Tagged(ctx context.Context, upstream, repo, tag string) (string, []byte, bool, error) {
	mt, body, err := s.Manifest(ctx, upstream, repo, tag)
	var se *statusError
	if errors.As(err, &se) && (se.status == http.StatusNotFound || se.status == http.StatusForbidden) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, err
	}
	return mt, body, true, nil
}

// exportAttachments writes the attachments of every manifest of the
// entries' trees (an index and its platform manifests are all subjects)
// and returns them with their index.json descriptors.
func (x *exporter) exportAttachments(ctx context.Context, entries []Entry) ([]Attachment, []ocispec.Descriptor, error) {
	src, ok := x.o.Source.(AttachmentSource)
	if !ok {
		return nil, nil, nil
	}
	var out []Attachment
	var descs []ocispec.Descriptor
	seen := map[string]bool{}
	for _, e := range entries {
		subj, err := parseRef(e.Reference)
		if err != nil {
			return nil, nil, err
		}
		subjects, err := x.treeManifests(ctx, subj, e.Digest)
		if err != nil {
			return nil, nil, fmt.Errorf("export attachments of %s: %w", e.Reference, err)
		}
		for _, s := range subjects {
			found, err := x.attachmentsOf(ctx, src, subj, s)
			if err != nil {
				return nil, nil, fmt.Errorf("export attachments of %s (%s): %w", e.Reference, s, err)
			}
			for _, a := range found {
				key := a.Repository + "@" + a.Subject.String() + "@" + a.Digest.String() + "@" + a.Tag
				if seen[key] {
					continue
				}
				seen[key] = true
				out = append(out, a)
				descs = append(descs, a.descriptor())
			}
		}
	}
	return out, descs, nil
}

func (a Attachment) descriptor() ocispec.Descriptor {
	ann := map[string]string{annotationSubject: a.Subject.String(), annotationRepository: a.Repository}
	if a.Tag != "" {
		ann[annotationTag] = a.Tag
	}
	return ocispec.Descriptor{MediaType: a.MediaType, Digest: a.Digest, Size: a.Size, ArtifactType: a.ArtifactType, Annotations: ann}
}

// treeManifests lists root and every manifest below it, read through the
// proxy (which serves them under the root's approval).
func (x *exporter) treeManifests(ctx context.Context, subj policy.Subject, root digest.Digest) ([]digest.Digest, error) {
	out := []digest.Digest{}
	seen := map[digest.Digest]bool{}
	var walk func(dg digest.Digest) error
	walk = func(dg digest.Digest) error {
		if seen[dg] {
			return nil
		}
		seen[dg] = true
		_, body, err := x.o.Source.Manifest(ctx, subj.Upstream, subj.Repository, dg.String())
		if err != nil {
			return err
		}
		if digest.FromBytes(body) != dg {
			return fmt.Errorf("manifest %s: the proxy served other bytes", dg)
		}
		out = append(out, dg)
		refs, err := references(body)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", dg, err)
		}
		for _, c := range refs.manifests {
			if err := walk(c.Digest); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(root)
}

// attachmentsOf exports subject's attachments: its referrers and what
// cosign's tags name.
func (x *exporter) attachmentsOf(ctx context.Context, src AttachmentSource, subj policy.Subject, subject digest.Digest) ([]Attachment, error) {
	repo := subj.Upstream + "/" + subj.Repository
	var out []Attachment
	descs, err := src.Referrers(ctx, subj.Upstream, subj.Repository, subject)
	if err != nil {
		return nil, err
	}
	for _, d := range descs {
		mt, body, err := x.o.Source.Manifest(ctx, subj.Upstream, subj.Repository, d.Digest.String())
		if err != nil {
			return nil, err
		}
		a, err := x.writeAttachment(ctx, subj, subject, d.Digest, mt, body, "")
		if err != nil {
			return nil, err
		}
		a.Repository = repo
		out = append(out, a)
	}
	for _, tag := range attachment.CosignTags(subject) {
		mt, body, found, err := src.Tagged(ctx, subj.Upstream, subj.Repository, tag)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		a, err := x.writeAttachment(ctx, subj, subject, digest.FromBytes(body), mt, body, tag)
		if err != nil {
			return nil, err
		}
		a.Repository = repo
		out = append(out, a)
	}
	return out, nil
}

// writeAttachment checks one attachment as the proxy did and writes it
// and its blobs (those a --since base carried are left out, as for any
// content).
func (x *exporter) writeAttachment(ctx context.Context, subj policy.Subject, subject, dg digest.Digest, mt string, body []byte, tag string) (Attachment, error) {
	if got := digest.FromBytes(body); got != dg {
		return Attachment{}, fmt.Errorf("attachment %s: the proxy served %s", dg, got)
	}
	m, err := attachment.Parse(mt, body, subject, tag != "")
	if err != nil {
		return Attachment{}, fmt.Errorf("attachment %s: %w", dg, err)
	}
	a := Attachment{Subject: subject, Digest: dg, MediaType: m.MediaType, Size: int64(len(body)), ArtifactType: m.Type(), Tag: tag}
	if x.out.has(blobName(dg)) || x.omit(dg) {
		return a, nil
	}
	for _, b := range m.Blobs() {
		if x.out.has(blobName(b.Digest)) || x.omit(b.Digest) {
			continue
		}
		if err := x.copyBlob(ctx, subj, b); err != nil {
			return a, err
		}
	}
	return a, x.put(blobName(dg), int64(len(body)), bytes.NewReader(body))
}

// verifyAttachments checks the export's attachments against the subjects
// verify approved (every manifest of an entry's tree, in the entry's
// repository) and adds them and their blobs to the plan. An attachment of
// anything else is refused, and with it the whole export.
func (p *plan) verifyAttachments(ctx context.Context, engine *policy.Engine, rd layoutReader, ix *Index) error {
	subjects := map[string]bool{}
	for _, e := range ix.Entries {
		subj, err := parseRef(e.Reference)
		if err != nil {
			return err
		}
		repo := subj.Upstream + "/" + subj.Repository
		if err := p.subjectsOf(ctx, rd, repo, e.Digest, subjects); err != nil {
			return fmt.Errorf("%s: %w", e.Reference, err)
		}
	}
	p.attached = map[digest.Digest]bool{}
	for _, a := range ix.Attachments {
		if err := p.verifyAttachment(ctx, engine, rd, a, subjects); err != nil {
			return fmt.Errorf("attachment %s of %s@%s: %w", a.Digest, a.Repository, a.Subject, err)
		}
		p.attachments = append(p.attachments, a)
		p.attached[a.Digest] = true
	}
	return nil
}

func (p *plan) subjectsOf(ctx context.Context, rd layoutReader, repo string, dg digest.Digest, into map[string]bool) error {
	if into[repo+"@"+dg.String()] {
		return nil
	}
	into[repo+"@"+dg.String()] = true
	_, body, err := rd.Manifest(ctx, dg)
	if err != nil {
		return err
	}
	refs, err := references(body)
	if err != nil {
		return err
	}
	for _, c := range refs.manifests {
		if err := p.subjectsOf(ctx, rd, repo, c.Digest, into); err != nil {
			return err
		}
	}
	return nil
}

func (p *plan) verifyAttachment(ctx context.Context, engine *policy.Engine, rd layoutReader, a Attachment, subjects map[string]bool) error {
	if !subjects[a.Repository+"@"+a.Subject.String()] {
		return errors.New("its subject is not an approved manifest of this export in that repository (an unsigned addition?)")
	}
	if a.Tag != "" {
		if s, cosign, ok := attachment.ParseTag(a.Tag); !ok || cosign == "" || s != a.Subject {
			return fmt.Errorf("tag %q is not a cosign tag of its subject", a.Tag)
		}
	}
	if a.Digest.Validate() != nil || a.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %q is not a sha256 digest", a.Digest)
	}
	_, body, err := rd.Manifest(ctx, a.Digest)
	if err != nil {
		return err
	}
	if digest.FromBytes(body) != a.Digest || int64(len(body)) != a.Size {
		return fmt.Errorf("manifest bytes do not match its digest and size")
	}
	m, err := attachment.Parse(a.MediaType, body, a.Subject, a.Tag != "")
	if err != nil {
		return err
	}
	upstream, repo, _ := strings.Cut(a.Repository, "/")
	if r := engine.Rule(upstream, repo); r == nil || !r.Attachments.Allows(m.Type()) {
		return fmt.Errorf("this side's rule for %s does not serve attachments of artifact type %q (attachments setting)", a.Repository, m.Type())
	}
	for _, b := range m.Blobs() {
		size, err := rd.size(b.Digest)
		if err != nil {
			return fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		if size != b.Size {
			return fmt.Errorf("blob %s has %d bytes; the attachment says %d", b.Digest, size, b.Size)
		}
		if !rd.inLayout(b.Digest) {
			p.reused[b.Digest] = true
			continue
		}
		p.blobs[b.Digest] = size
	}
	if _, done := p.manifests[a.Digest]; !done {
		if !rd.inLayout(a.Digest) {
			p.reused[a.Digest] = true
		}
		p.manifests[a.Digest] = m.MediaType
		p.order = append(p.order, a.Digest)
	}
	return nil
}

// listedAttachment reports whether an index.json entry is one of the
// verified attachments, annotated as export writes it.
func (p *plan) listedAttachment(d ocispec.Descriptor) bool {
	if !p.attached[d.Digest] {
		return false
	}
	for _, a := range p.attachments {
		if a.Digest == d.Digest && d.Annotations[annotationSubject] == a.Subject.String() && d.Annotations[annotationRepository] == a.Repository {
			return true
		}
	}
	return false
}

// commitAttachments records, per subject, the referrers index an offline
// upstream answers from (merged with what earlier imports recorded) and
// cosign's tags, as tag hints: the proxy re-checks everything they name.
// It returns how many hints changed.
func commitAttachments(ctx context.Context, p *plan, o ImportOptions) (int, error) {
	type key struct {
		repo    string
		subject digest.Digest
	}
	bySubject := map[key][]ocispec.Descriptor{}
	var keys []key
	changed := 0
	for _, a := range p.attachments {
		if a.Tag != "" {
			if d, err := o.Cache.TagHint(ctx, a.Repository, a.Tag); err == nil && d == a.Digest {
				continue
			}
			if err := o.Cache.PutTagHint(ctx, a.Repository, a.Tag, a.Digest); err != nil {
				return changed, fmt.Errorf("load attachment tag: %w", err)
			}
			changed++
			continue
		}
		k := key{a.Repository, a.Subject}
		if _, ok := bySubject[k]; !ok {
			keys = append(keys, k)
		}
		bySubject[k] = append(bySubject[k], ocispec.Descriptor{MediaType: a.MediaType, Digest: a.Digest, Size: a.Size, ArtifactType: a.ArtifactType})
	}
	for _, k := range keys {
		tag := attachment.SchemaTag(k.subject)
		var descs []ocispec.Descriptor
		have := map[digest.Digest]bool{}
		if old, err := o.Cache.TagHint(ctx, k.repo, tag); err == nil {
			if _, body, err := o.Cache.GetManifest(ctx, old); err == nil {
				var ix ocispec.Index
				if json.Unmarshal(body, &ix) == nil {
					for _, d := range ix.Manifests {
						if !have[d.Digest] {
							have[d.Digest] = true
							descs = append(descs, d)
						}
					}
				}
			}
		}
		n := len(descs)
		for _, d := range bySubject[k] {
			if !have[d.Digest] {
				have[d.Digest] = true
				descs = append(descs, d)
			}
		}
		if len(descs) == n && n > 0 {
			continue
		}
		body, err := json.Marshal(attachment.Index(descs))
		if err != nil {
			return changed, err
		}
		dg := digest.FromBytes(body)
		if err := o.Cache.PutManifest(ctx, dg, ocispec.MediaTypeImageIndex, body); err != nil {
			return changed, fmt.Errorf("load referrers index of %s@%s: %w", k.repo, k.subject, err)
		}
		if err := o.Cache.PutTagHint(ctx, k.repo, tag, dg); err != nil {
			return changed, fmt.Errorf("load referrers index of %s@%s: %w", k.repo, k.subject, err)
		}
		changed++
	}
	return changed, nil
}
