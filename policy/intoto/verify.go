package intoto

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
)

// Input is everything one verification looks at. It is plain bytes and
// values: the caller fetched them (through TUF) and nothing here reads a file.
type Input struct {
	// Layout is the raw root.layout: a classic metablock or a DSSE envelope.
	Layout []byte
	// LayoutKeys are the layout's public keys: PEM (PKIX) or securesystemslib
	// JSON (the .pub of Python's in-toto-keygen). As in
	// in_toto.VerifyLayoutSignatures, EVERY given key must have signed the
	// layout; give only the keys that are meant to sign.
	LayoutKeys [][]byte
	// LayoutKeyOrigins say where each layout key came from, for messages
	// (`pinned in rule "acme" (inToto.layoutKeys[0])`, `trust repository
	// target "…/in-toto-pubkeys/….pub"`); index i describes LayoutKeys[i].
	LayoutKeyOrigins []string
	// Links are the raw link files (classic or DSSE), in any order. Links for
	// names that are not steps of the layout are ignored.
	Links [][]byte
	// SubjectName is the artifact name the layout uses for the pulled bytes:
	// "manifest.json" for an image, "bundle.json" for a CNAB bundle.
	SubjectName string
	// SubjectSHA256 is the lowercase hex sha256 of the pulled bytes.
	SubjectSHA256 string
	// Parameters are substituted for {NAME} in the layout's rules.
	Parameters map[string]string
	// Now is the verification time; the layout must not have expired by then.
	Now time.Time
	// Limits bound the input; zero fields are DefaultLimits.
	Limits Limits
}

// Result says what was verified, for the audit line.
type Result struct {
	// LayoutSHA256 is the hex sha256 of the raw layout bytes.
	LayoutSHA256 string
	// Steps are the layout's steps, in layout order; all were verified.
	Steps []string
	// Functionaries are the key ids that signed accepted links, sorted.
	Functionaries []string
	// Inspections were evaluated as no-ops (their commands were not run).
	Inspections []string
	// BoundBy names what ties the pulled subject to the supply chain:
	// `step "package"` or `inspection "verify" (MATCH ... FROM package)`.
	BoundBy string
	// ValidUntil is when this result stops holding: the layout's expiry, or
	// earlier if an accepted link was signed with a certificate that expires
	// before it.
	ValidUntil time.Time
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Verify checks in-toto metadata for one subject without running any command
// or touching the file system. Every error is a denial whose message names the
// step, key and rule at fault, meant to follow an "in-toto: " prefix the caller
// adds; context errors are returned as they are, so errors.Is sees them.
func Verify(ctx context.Context, in Input) (res Result, err error) {
	defer func() {
		// in-toto-golang panics on some inputs (a step without links in
		// ReduceStepsMetadata, a key whose type does not match its PEM).
		if r := recover(); r != nil {
			res, err = Result{}, fmt.Errorf("verification aborted on an internal error of the in-toto library (%v)", r)
		}
	}()
	res, err = verify(ctx, in)
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

func verify(ctx context.Context, in Input) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	in.Limits = in.Limits.WithDefaults()
	subject, err := checkInput(in)
	if err != nil {
		return Result{}, err
	}
	keys, err := parseLayoutKeys(in.LayoutKeys, in.LayoutKeyOrigins)
	if err != nil {
		return Result{}, err
	}
	layoutMd, err := parseMetadata(in.Layout)
	if err != nil {
		return Result{}, fmt.Errorf("layout: %w", err)
	}
	layout, ok := layoutMd.GetPayload().(in_toto.Layout)
	if !ok {
		return Result{}, errors.New("layout: the root layout file holds a link, not a layout")
	}
	if err := verifyLayoutSignatures(layoutMd, keys); err != nil {
		return Result{}, err
	}
	if err := in.Limits.checkLayout(layout); err != nil {
		return Result{}, err
	}
	if err := validateLayout(layoutMd, layout); err != nil {
		return Result{}, fmt.Errorf("layout is malformed: %w", err)
	}
	expires, err := time.Parse(in_toto.ISO8601DateSchema, layout.Expires)
	if err != nil {
		return Result{}, fmt.Errorf("layout expiry %q: %w", layout.Expires, err)
	}
	if !in.Now.Before(expires) {
		return Result{}, fmt.Errorf("layout expired at %s (verification time %s)",
			expires.UTC().Format(time.RFC3339), in.Now.UTC().Format(time.RFC3339))
	}
	if layout, err = substituteParameters(layout, in.Parameters); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	candidates, err := groupLinks(layout, in.Links)
	if err != nil {
		return Result{}, err
	}
	rootPool, interPool, err := in_toto.LoadLayoutCertificates(layout, nil)
	if err != nil {
		return Result{}, fmt.Errorf("layout certificates: %w", err)
	}
	verified := make(map[string]map[string]in_toto.Metadata, len(layout.Steps))
	validUntil := expires
	functionaries := map[string]bool{}
	for _, step := range layout.Steps {
		acc, err := verifyStepLinks(layout, step, candidates[step.Name], rootPool, interPool)
		if err != nil {
			return Result{}, err
		}
		verified[step.Name] = acc.links
		for id := range acc.links {
			functionaries[id] = true
		}
		if !acc.certNotAfter.IsZero() && acc.certNotAfter.Before(validUntil) {
			validUntil = acc.certNotAfter
		}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	reduced, err := in_toto.ReduceStepsMetadata(layout, verified)
	if err != nil {
		return Result{}, fmt.Errorf("links of one step disagree on their artifacts: %w", err)
	}
	for _, step := range layout.Steps {
		if err := in_toto.VerifyArtifacts([]any{step}, reduced); err != nil {
			return Result{}, fmt.Errorf("step %q: %w", step.Name, err)
		}
	}
	boundBy, err := bindSubjectToSteps(layout, reduced, subject)
	if err != nil {
		return Result{}, err
	}
	inspected, err := evaluateInspections(layout, reduced, subject)
	if err != nil {
		return Result{}, err
	}
	if boundBy == "" {
		boundBy = inspected.boundBy
	}
	if boundBy == "" {
		return Result{}, fmt.Errorf("layout does not bind %s: no step lists it among its products and no "+
			"inspection MATCHes it against a step's artifacts, so nothing ties sha256:%s to the supply chain",
			subject.name, subject.sha256)
	}

	sum := sha256.Sum256(in.Layout)
	res := Result{
		LayoutSHA256:  hex.EncodeToString(sum[:]),
		Steps:         make([]string, 0, len(layout.Steps)),
		Functionaries: make([]string, 0, len(functionaries)),
		Inspections:   make([]string, 0, len(layout.Inspect)),
		BoundBy:       boundBy,
		ValidUntil:    validUntil,
	}
	for _, s := range layout.Steps {
		res.Steps = append(res.Steps, s.Name)
	}
	for id := range functionaries {
		res.Functionaries = append(res.Functionaries, id)
	}
	sort.Strings(res.Functionaries)
	for _, i := range layout.Inspect {
		res.Inspections = append(res.Inspections, i.Name)
	}
	return res, nil
}

// subject is the pulled artifact as the layout names it.
type subject struct {
	name   string
	sha256 string
}

func checkInput(in Input) (subject, error) {
	name := path.Clean(in.SubjectName)
	if in.SubjectName == "" || name != in.SubjectName || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return subject{}, fmt.Errorf("subject name %q must be a clean relative artifact name such as manifest.json", in.SubjectName)
	}
	if !hexSHA256.MatchString(in.SubjectSHA256) {
		return subject{}, fmt.Errorf("subject sha256 %q must be 64 lowercase hex characters", in.SubjectSHA256)
	}
	if in.Now.IsZero() {
		return subject{}, errors.New("no verification time given")
	}
	if len(in.LayoutKeys) == 0 {
		return subject{}, errors.New("no layout keys: a layout is only trusted when pinned keys signed it")
	}
	if err := in.Limits.CheckLayoutKeyCount(len(in.LayoutKeys)); err != nil {
		return subject{}, err
	}
	if err := in.Limits.CheckLinkCount(len(in.Links)); err != nil {
		return subject{}, err
	}
	if err := checkCount(len(in.Parameters), in.Limits.MaxParameters, "the rule supplies", "parameters", "maxParameters"); err != nil {
		return subject{}, err
	}
	if err := in.Limits.CheckMetadataSize("the layout", int64(len(in.Layout))); err != nil {
		return subject{}, err
	}
	for i, l := range in.Links {
		if err := in.Limits.CheckMetadataSize(fmt.Sprintf("link #%d", i+1), int64(len(l))); err != nil {
			return subject{}, err
		}
	}
	return subject{name: name, sha256: in.SubjectSHA256}, nil
}
