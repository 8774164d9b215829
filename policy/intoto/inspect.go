package intoto

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
)

// bindSubjectToSteps finds the last step, in layout order, that lists the
// subject among its products. That is the final version of the artifact, and
// it must be exactly the pulled bytes. "" means no step produces it.
func bindSubjectToSteps(layout in_toto.Layout, reduced map[string]in_toto.Metadata, s subject) (string, error) {
	var (
		step string
		hash in_toto.HashObj
	)
	for _, st := range layout.Steps {
		link, ok := reduced[st.Name].GetPayload().(in_toto.Link)
		if !ok {
			continue
		}
		var found in_toto.HashObj
		for name, h := range link.Products {
			if path.Clean(name) != s.name {
				continue
			}
			if found != nil && !maps.Equal(found, h) {
				return "", fmt.Errorf("step %q lists %s twice among its products, with different digests", st.Name, s.name)
			}
			found = h
		}
		if found != nil {
			step, hash = st.Name, found
		}
	}
	if step == "" {
		return "", nil
	}
	got, ok := hash["sha256"]
	if !ok {
		return "", fmt.Errorf("step %q lists %s among its products without a sha256 digest, so it cannot be "+
			"compared with the pulled sha256:%s", step, s.name, s.sha256)
	}
	if strings.ToLower(got) != s.sha256 {
		return "", fmt.Errorf("step %q produced %s with digest sha256:%s, but the pulled %s has digest sha256:%s: "+
			"the links are for other content", step, s.name, strings.ToLower(got), s.name, s.sha256)
	}
	return fmt.Sprintf("step %q", step), nil
}

type inspectionOutcome struct {
	boundBy string // set when an inspection MATCHes the subject against a step
}

// evaluateInspections checks every inspection's artifact rules against the
// link its command would have produced had it been a no-op run in a directory
// holding only the subject. Nothing is executed.
func evaluateInspections(layout in_toto.Layout, reduced map[string]in_toto.Metadata, s subject) (inspectionOutcome, error) {
	var out inspectionOutcome
	if len(layout.Inspect) == 0 {
		return out, nil
	}
	// As in InTotoVerify, inspection rules see all inspection links and the
	// reduced step links.
	items := make(map[string]in_toto.Metadata, len(reduced)+len(layout.Inspect))
	for _, i := range layout.Inspect {
		items[i.Name] = noopLink(i.Name, s)
	}
	for name, md := range reduced {
		items[name] = md
	}
	for _, i := range layout.Inspect {
		if err := checkNoExecRules(i, s); err != nil {
			return out, err
		}
		if err := in_toto.VerifyArtifacts([]any{i}, items); err != nil {
			return out, fmt.Errorf("inspection %q (run %q) fails: trustproxy never runs inspection commands; it "+
				"evaluates each inspection as a no-op in a directory that holds only %s (sha256:%s), and this "+
				"inspection's rules need other artifacts: %v", i.Name, strings.Join(i.Run, " "), s.name, s.sha256, err)
		}
	}
	steps := make([]string, 0, len(layout.Steps))
	for _, st := range layout.Steps {
		steps = append(steps, st.Name)
	}
	for _, i := range layout.Inspect {
		for _, rules := range [][][]string{i.ExpectedMaterials, i.ExpectedProducts} {
			if rule := consumingRule(i.Name, rules, items); rule != nil && matchesAStep(rule, steps) {
				out.boundBy = fmt.Sprintf("inspection %q (%s)", i.Name, strings.Join(rule, " "))
				return out, nil
			}
		}
	}
	return out, nil
}

// checkNoExecRules refuses the inspection rules a command that never runs
// cannot honour, before in-toto's rule engine sees them: that engine only
// fails on DISALLOW and REQUIRE, so a MATCH, CREATE, MODIFY or DELETE rule
// about files the command would have produced passes vacuously against a
// directory holding only the subject. Per rule type:
//
//   - CREATE, MODIFY, DELETE: a no-op creates, modifies and deletes nothing;
//     only running the command could satisfy the rule. Denied.
//   - MATCH, REQUIRE: the pattern (with its IN prefix) must match the subject's
//     name; a pattern for any other artifact names files only the command
//     would produce. Denied otherwise. A MATCH on the subject is then checked
//     by in-toto against the named step's artifacts.
//   - ALLOW, DISALLOW: evaluated by in-toto on the no-op link as written; they
//     only permit or forbid what is there, and only the subject is there.
func checkNoExecRules(i in_toto.Inspection, s subject) error {
	for _, list := range []struct {
		field string
		rules [][]string
	}{{"expected_materials", i.ExpectedMaterials}, {"expected_products", i.ExpectedProducts}} {
		for _, rule := range list.rules {
			data, err := in_toto.UnpackRule(rule)
			if err != nil {
				return fmt.Errorf("inspection %q %s rule %q: %w", i.Name, list.field, strings.Join(rule, " "), err)
			}
			why := ""
			switch data["type"] {
			case "create", "modify", "delete":
				why = fmt.Sprintf("a command that never runs %s nothing, so only running it could satisfy this rule",
					map[string]string{"create": "creates", "modify": "modifies", "delete": "deletes"}[data["type"]])
			case "match", "require":
				pattern := data["pattern"]
				if p := data["srcPrefix"]; p != "" {
					pattern = path.Join(p, pattern)
				}
				if len(in_toto.NewSet(s.name).Filter(path.Clean(pattern))) == 0 {
					why = fmt.Sprintf("it refers to %s, not to the subject %s: only running the command could produce that",
						pattern, s.name)
				}
			}
			if why != "" {
				return fmt.Errorf("inspection %q (run %q) cannot be evaluated without running it, so it fails closed: "+
					"%s rule %q: %s (trustproxy never runs inspection commands; it evaluates each inspection as a no-op "+
					"in a directory that holds only %s, sha256:%s)",
					i.Name, strings.Join(i.Run, " "), list.field, strings.Join(rule, " "), why, s.name, s.sha256)
			}
		}
	}
	return nil
}

// noopLink is the unsigned link of an inspection whose command changed
// nothing in a directory that holds only the subject. Fresh maps each time:
// VerifyArtifacts rewrites artifact maps in place.
func noopLink(name string, s subject) in_toto.Metadata {
	artifacts := func() map[string]in_toto.HashObj {
		return map[string]in_toto.HashObj{s.name: {"sha256": s.sha256}}
	}
	return &in_toto.Metablock{Signed: in_toto.Link{
		Type: "link", Name: name,
		Materials: artifacts(), Products: artifacts(),
		ByProducts: map[string]any{}, Command: []string{}, Environment: map[string]any{},
	}}
}

// consumingRule returns the rule of one rule list that consumes the subject,
// the only artifact in the no-op link. VerifyArtifacts does not report which
// rule consumed what, so each prefix of the list is run with a trailing
// DISALLOW *: the first prefix that passes ends with the consuming rule.
// Materials and products of the no-op link are the same, so running a product
// rule list as material rules gives the same answer.
func consumingRule(inspection string, rules [][]string, items map[string]in_toto.Metadata) []string {
	for j := range rules {
		probe := append(slices.Clone(rules[:j+1]), []string{"DISALLOW", "*"})
		item := in_toto.Inspection{Type: "inspection", SupplyChainItem: in_toto.SupplyChainItem{
			Name: inspection, ExpectedMaterials: probe, ExpectedProducts: nil,
		}}
		if in_toto.VerifyArtifacts([]any{item}, items) == nil {
			return rules[j]
		}
	}
	return nil
}

// matchesAStep reports whether a rule is MATCH ... FROM <step>: only a
// verified step's signed artifacts tie the subject to the supply chain; a
// MATCH against another inspection compares the subject with itself.
func matchesAStep(rule []string, steps []string) bool {
	data, err := in_toto.UnpackRule(rule)
	if err != nil || data["type"] != "match" {
		return false
	}
	return slices.Contains(steps, data["dstName"])
}
