package intoto

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
)

// candidate is one link offered for a step under one signer key id.
type candidate struct {
	md  in_toto.Metadata
	sum [32]byte // of the raw file, to tell a duplicate from a conflict
}

// groupLinks parses the links and files each under its step and every key id
// that signed it, the shape in_toto.VerifyLinkSignatureThesholds expects.
func groupLinks(layout in_toto.Layout, raw [][]byte) (map[string]map[string]candidate, error) {
	steps := make(map[string]bool, len(layout.Steps))
	for _, s := range layout.Steps {
		steps[s.Name] = true
	}
	out := map[string]map[string]candidate{}
	for i, b := range raw {
		md, err := parseMetadata(b)
		if err != nil {
			return nil, fmt.Errorf("link #%d: %w", i+1, err)
		}
		var signers []string
		for _, s := range md.Sigs() {
			signers = append(signers, s.KeyID)
		}
		link, ok := md.GetPayload().(in_toto.Link)
		if !ok {
			// in-toto verifies a sublayout by running InTotoVerify on it,
			// inspections included.
			return nil, fmt.Errorf("link #%d (signed by %s) is a sublayout: trustproxy does not verify sublayouts, "+
				"because that would run their inspection commands; flatten the sublayout's steps into the root layout",
				i+1, shortList(signers))
		}
		if !steps[link.Name] {
			continue
		}
		if out[link.Name] == nil {
			out[link.Name] = map[string]candidate{}
		}
		c := candidate{md: md, sum: sha256.Sum256(b)}
		for _, id := range signers {
			if prev, ok := out[link.Name][id]; ok && prev.sum != c.sum {
				return nil, fmt.Errorf("step %q: two different links signed by key %s; publish one link per step and functionary",
					link.Name, short(id))
			}
			out[link.Name][id] = c
		}
	}
	return out, nil
}

type stepAcceptance struct {
	links        map[string]in_toto.Metadata // key id -> link
	certNotAfter time.Time                   // earliest expiry of a certificate that signed an accepted link
}

// verifyStepLinks decides link by link with in_toto.VerifyLinkSignatureThesholds
// (one link, threshold 0), then counts the threshold itself. Calling the
// library once per step is order dependent: its isAuthorizedSignature flag is
// not reset between links, so after one key-authorized link a certificate
// signed link is skipped depending on map iteration order. The count is of
// distinct key material, not key ids.
func verifyStepLinks(layout in_toto.Layout, step in_toto.Step, cands map[string]candidate,
	rootPool, interPool *x509.CertPool) (stepAcceptance, error) {
	acc := stepAcceptance{links: map[string]in_toto.Metadata{}}
	authorized := slices.Clone(step.PubKeys)
	sort.Strings(authorized)
	if len(cands) == 0 {
		return acc, fmt.Errorf("step %q: no link found (needs %d signed by its functionaries %s%s)",
			step.Name, step.Threshold, shortList(authorized), certNote(step))
	}

	one := layout
	single := step
	single.Threshold = 0
	one.Steps = []in_toto.Step{single}

	ids := make([]string, 0, len(cands))
	for id := range cands {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	seen := map[string]string{} // key material -> key id that counted it
	var rejected []string
	for _, id := range ids {
		md := cands[id].md
		got, err := in_toto.VerifyLinkSignatureThesholds(one,
			map[string]map[string]in_toto.Metadata{step.Name: {id: md}}, rootPool, interPool)
		if err != nil || got[step.Name][id] == nil {
			rejected = append(rejected, fmt.Sprintf("link by %s: %s", short(id), explainLink(layout, step, id, md, rootPool, interPool)))
			continue
		}
		fp, notAfter, err := signerIdentity(layout, step, id, md)
		if err != nil {
			rejected = append(rejected, fmt.Sprintf("link by %s: %v", short(id), err))
			continue
		}
		if other, dup := seen[fp]; dup {
			rejected = append(rejected, fmt.Sprintf("link by %s: same key as %s, counted once", short(id), short(other)))
			continue
		}
		seen[fp] = id
		acc.links[id] = md
		if !notAfter.IsZero() && (acc.certNotAfter.IsZero() || notAfter.Before(acc.certNotAfter)) {
			acc.certNotAfter = notAfter
		}
	}
	if len(acc.links) >= step.Threshold {
		return acc, nil
	}
	valid := make([]string, 0, len(acc.links))
	for id := range acc.links {
		valid = append(valid, id)
	}
	sort.Strings(valid)
	got := "none valid"
	if len(valid) > 0 {
		got = fmt.Sprintf("%d valid %s", len(valid), shortList(valid))
	}
	msg := fmt.Sprintf("step %q needs %d link(s) signed by distinct functionaries %s%s; %s",
		step.Name, step.Threshold, shortList(authorized), certNote(step), got)
	if len(rejected) > 0 {
		msg += "; rejected: " + strings.Join(rejected, "; ")
	}
	return stepAcceptance{}, fmt.Errorf("%s", msg)
}

func certNote(step in_toto.Step) string {
	if len(step.CertificateConstraints) == 0 {
		return ""
	}
	return " or by certificates meeting its constraints"
}

// signerIdentity returns the key material behind an accepted link's signer
// and, for a certificate, its expiry. A key id the step authorizes stands for
// the layout's key; anything else was accepted through a certificate.
func signerIdentity(layout in_toto.Layout, step in_toto.Step, id string, md in_toto.Metadata) (string, time.Time, error) {
	sig, sigErr := md.GetSignatureForKeyID(id)
	key, listed := layout.Keys[id]
	listed = listed && slices.Contains(step.PubKeys, id)
	if listed && (sigErr != nil || sig.Certificate == "" || md.VerifySignature(key) == nil) {
		fp, err := keyFingerprint(key)
		return fp, time.Time{}, err
	}
	if sigErr != nil || sig.Certificate == "" {
		return "", time.Time{}, fmt.Errorf("accepted without a key or certificate to identify its signer")
	}
	certKey, err := sig.GetCertificate()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("certificate: %w", err)
	}
	fp, err := keyFingerprint(certKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("certificate key: %w", err)
	}
	var notAfter time.Time
	if block, _ := pem.Decode([]byte(sig.Certificate)); block != nil {
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			notAfter = cert.NotAfter
		}
	}
	return fp, notAfter, nil
}

// explainLink says why the library refused a link, for the denial message.
func explainLink(layout in_toto.Layout, step in_toto.Step, id string, md in_toto.Metadata,
	rootPool, interPool *x509.CertPool) string {
	if slices.Contains(step.PubKeys, id) {
		key, ok := layout.Keys[id]
		if !ok {
			return "the step lists this key id but the layout holds no such key"
		}
		if err := md.VerifySignature(key); err != nil {
			return fmt.Sprintf("signature does not verify (%v)", err)
		}
	}
	sig, err := md.GetSignatureForKeyID(id)
	if err != nil {
		return err.Error()
	}
	if sig.Certificate == "" {
		return fmt.Sprintf("key is not a functionary of step %q", step.Name)
	}
	cert, err := sig.GetCertificate()
	if err != nil {
		return fmt.Sprintf("certificate: %v", err)
	}
	if err := step.CheckCertConstraints(cert, layout.RootCAIDs(), rootPool, interPool); err != nil {
		return fmt.Sprintf("certificate does not meet the step's constraints (%v)", err)
	}
	if err := md.VerifySignature(cert); err != nil {
		return fmt.Sprintf("signature does not verify with its certificate (%v)", err)
	}
	return "refused by in-toto"
}
