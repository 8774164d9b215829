package intoto

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
)

// layoutKeys are the parsed layout keys by key id, and where each came
// from, so that a denial names the key's source: a key pinned in the rule
// and a key the trust repository lists are fixed in different places.
type layoutKeys struct {
	keys    map[string]in_toto.Key
	origins map[string]string
}

func parseLayoutKeys(raw [][]byte, origins []string) (layoutKeys, error) {
	lk := layoutKeys{keys: make(map[string]in_toto.Key, len(raw)), origins: make(map[string]string, len(raw))}
	for i, b := range raw {
		origin := fmt.Sprintf("layout key #%d", i+1)
		if i < len(origins) && origins[i] != "" {
			origin = origins[i]
		}
		k, err := ParsePublicKey(b)
		if err != nil {
			return layoutKeys{}, fmt.Errorf("%s: %w", origin, err)
		}
		lk.keys[k.KeyID] = k
		lk.origins[k.KeyID] = origin
	}
	return lk, nil
}

// verifyLayoutSignatures applies in_toto.VerifyLayoutSignatures (every key
// must have signed) and, when it fails, works out which key and why.
func verifyLayoutSignatures(md in_toto.Metadata, lk layoutKeys) error {
	keys := lk.keys
	err := in_toto.VerifyLayoutSignatures(md, keys)
	if err == nil {
		return nil
	}
	ids := make([]string, 0, len(keys))
	for id := range keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var signers []string
	for _, s := range md.Sigs() {
		signers = append(signers, s.KeyID)
	}
	for _, id := range ids {
		k := keys[id]
		if _, err := md.GetSignatureForKeyID(id); err != nil {
			hint := ""
			if k.KeyType == keyTypeECDSA {
				hint = "; an ECDSA key made by Python's in-toto-keygen must be given as its JSON .pub, " +
					"its PEM form has another key id"
			}
			return fmt.Errorf("layout is not signed by layout key %s (%s); it carries signatures from %s%s",
				short(id), lk.origins[id], shortList(signers), hint)
		}
		if err := md.VerifySignature(k); err != nil {
			return fmt.Errorf("layout signature by layout key %s (%s) does not verify: %v", short(id), lk.origins[id], err)
		}
	}
	return fmt.Errorf("layout signatures: %w", err)
}

// validateLayout runs in_toto.ValidateMetablock (which InTotoVerify never
// does) plus the checks it lacks that would otherwise end in a panic, a
// stdout warning or a vacuous step.
func validateLayout(md in_toto.Metadata, layout in_toto.Layout) error {
	if len(layout.Steps) == 0 {
		return errors.New("it has no steps")
	}
	for _, s := range layout.Steps {
		// Threshold 0 would accept a step nobody performed, and
		// ReduceStepsMetadata panics on a step without links.
		if s.Threshold < 1 {
			return fmt.Errorf("step %q has threshold %d, want at least 1", s.Name, s.Threshold)
		}
		if err := checkRules("step", s.Name, s.ExpectedMaterials, s.ExpectedProducts); err != nil {
			return err
		}
	}
	for _, i := range layout.Inspect {
		if i.Type != "inspection" {
			return fmt.Errorf("inspection %q has _type %q", i.Name, i.Type)
		}
		if i.Name == "" {
			return errors.New("an inspection has no name")
		}
		if err := checkRules("inspection", i.Name, i.ExpectedMaterials, i.ExpectedProducts); err != nil {
			return err
		}
	}
	ids := make([]string, 0, len(layout.Keys))
	for id := range layout.Keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if _, err := keyFingerprint(layout.Keys[id]); err != nil {
			return fmt.Errorf("functionary key %s: %w", short(id), err)
		}
	}
	mb := in_toto.Metablock{Signed: layout}
	if c, ok := md.(*metablock); ok {
		mb.Signatures = c.Signatures
	}
	// For DSSE the payload still gets the structural checks; the envelope's
	// signatures are base64 and were checked by the verifier.
	return in_toto.ValidateMetablock(mb)
}

// checkRules rejects what in_toto.UnpackRule would panic on (an empty rule)
// and patterns that in_toto's Set.Filter would print a warning for.
func checkRules(kind, name string, lists ...[][]string) error {
	for _, rules := range lists {
		for _, rule := range rules {
			if len(rule) == 0 {
				return fmt.Errorf("%s %q has an empty artifact rule", kind, name)
			}
			if _, err := in_toto.UnpackRule(rule); err != nil {
				return fmt.Errorf("%s %q rule %v: %v", kind, name, rule, err)
			}
			if _, err := path.Match(rule[1], ""); err != nil {
				return fmt.Errorf("%s %q rule %v: malformed pattern %q", kind, name, rule, rule[1])
			}
		}
	}
	return nil
}

var (
	parameterName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	parameterUse  = regexp.MustCompile(`\{[a-zA-Z0-9_-]+\}`)
)

// substituteParameters is in_toto.SubstituteParameters plus Python in-toto's
// rule that a parameter the layout uses must be supplied: a rule left holding
// "{IMAGE}" would silently match nothing.
func substituteParameters(layout in_toto.Layout, params map[string]string) (in_toto.Layout, error) {
	for name := range params {
		if !parameterName.MatchString(name) {
			return layout, fmt.Errorf("parameter name %q: only letters, digits, '_' and '-' are allowed", name)
		}
	}
	out, err := in_toto.SubstituteParameters(layout, params)
	if err != nil {
		return layout, fmt.Errorf("substitute parameters: %w", err)
	}
	check := func(kind, name string, lists ...[][]string) error {
		for _, rules := range lists {
			for _, rule := range rules {
				for _, stanza := range rule {
					if m := parameterUse.FindString(stanza); m != "" {
						return fmt.Errorf("%s %q rule %v uses parameter %s, which the policy does not supply",
							kind, name, rule, strings.Trim(m, "{}"))
					}
				}
			}
		}
		return nil
	}
	for _, s := range out.Steps {
		if err := check("step", s.Name, s.ExpectedMaterials, s.ExpectedProducts); err != nil {
			return layout, err
		}
	}
	for _, i := range out.Inspect {
		if err := check("inspection", i.Name, i.ExpectedMaterials, i.ExpectedProducts); err != nil {
			return layout, err
		}
	}
	// A substituted value may itself be a malformed rule or pattern.
	for _, s := range out.Steps {
		if err := checkRules("step", s.Name, s.ExpectedMaterials, s.ExpectedProducts); err != nil {
			return layout, fmt.Errorf("after parameter substitution: %w", err)
		}
	}
	for _, i := range out.Inspect {
		if err := checkRules("inspection", i.Name, i.ExpectedMaterials, i.ExpectedProducts); err != nil {
			return layout, fmt.Errorf("after parameter substitution: %w", err)
		}
	}
	return out, nil
}
