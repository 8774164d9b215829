package mirror

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/trustproxy/trustproxy/internal/pattern"
	"github.com/trustproxy/trustproxy/policy"
)

// selectRefs turns patterns ("everything the trust data vouches for under
// docker.io/acme/**") and rule names ("everything rule acme's trust data
// vouches for") into references: every "<trust name>:<tag>" target of an
// enforce rule's verified trust index that maps back to a repository the
// rule governs. Each reference is then exported (and decided) like one
// given by name.
func (x *exporter) selectRefs() ([]string, error) {
	seen := map[string]bool{}
	var refs []string
	add := func(r policy.Rule, keep func(upstream, repo string) bool) (int, error) {
		tr := x.o.Trusts[r.Trust]
		if tr == nil {
			return 0, fmt.Errorf("rule %q: trust repository %q is not configured", ruleName(r), r.Trust)
		}
		ix, err := tr.Index()
		if err != nil {
			return 0, fmt.Errorf("rule %q: trust repository %q: %w", ruleName(r), r.Trust, err)
		}
		n := 0
		for _, name := range ix.Names() {
			up, repo, tag, ok := repositoryOf(r, name)
			if !ok || !keep(up, repo) {
				continue
			}
			// The most specific rule governs a repository: a target only
			// this rule's trust data names, for a repository another rule
			// governs, is not this rule's to export.
			if g := x.o.Policy.Rule(up, repo); g == nil || g.Name != ruleName(r) {
				continue
			}
			ref := up + "/" + repo + ":" + tag
			n++
			if !seen[ref] {
				seen[ref] = true
				refs = append(refs, ref)
			}
		}
		return n, nil
	}
	for _, name := range x.o.Rules {
		r, ok := x.rule(name)
		if !ok {
			return nil, fmt.Errorf("--rule %q: no such policy rule", name)
		}
		if r.Mode != policy.ModeEnforce {
			return nil, fmt.Errorf("--rule %q: mode %s: only content trust data vouches for (mode enforce) is exported", name, r.Mode)
		}
		n, err := add(r, func(string, string) bool { return true })
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("--rule %q: its trust data vouches for no tag of a repository it governs", name)
		}
	}
	for _, p := range x.o.Patterns {
		if err := pattern.Valid(p); err != nil {
			return nil, err
		}
		total := 0
		for _, r := range x.o.PolicyRules {
			if r.Mode != policy.ModeEnforce {
				continue
			}
			n, err := add(r, func(up, repo string) bool { return pattern.Match(p, up+"/"+repo) })
			if err != nil {
				return nil, err
			}
			total += n
		}
		if total == 0 {
			return nil, fmt.Errorf("pattern %q: no enforce rule's trust data vouches for a tag under it", p)
		}
	}
	sort.Strings(refs)
	return refs, nil
}

func (x *exporter) rule(name string) (policy.Rule, bool) {
	for _, r := range x.o.PolicyRules {
		if ruleName(r) == name {
			return r, true
		}
	}
	return policy.Rule{}, false
}

// ruleName is a rule's name; an unnamed rule is named by its pattern.
func ruleName(r policy.Rule) string {
	if r.Name == "" {
		return r.Match
	}
	return r.Name
}

// repositoryOf maps target name "<trust name>:<tag>" back to the upstream
// and repository whose trust name rule r makes it: the inverse of the
// rule's trustName mapping ("<upstream>/<repository>" by default). Targets
// that are not "<name>:<tag>" (in-toto layouts, keys, links) map to none.
func repositoryOf(r policy.Rule, target string) (upstream, repo, tag string, ok bool) {
	i := strings.LastIndex(target, ":")
	if i < 0 || strings.Contains(target[i:], "/") {
		return "", "", "", false
	}
	name, tag := target[:i], target[i+1:]
	if tag == "" {
		return "", "", "", false
	}
	if r.TrustName == "" {
		upstream, repo, ok = strings.Cut(name, "/")
		return upstream, repo, tag, ok && upstream != "" && repo != ""
	}
	// A custom trust name: "{upstream}" and "{repo}" are the unknowns; an
	// upstream the template does not name comes from the rule's pattern,
	// when its first segment is literal.
	expr := "^" + regexp.QuoteMeta(r.TrustName) + "$"
	expr = strings.Replace(expr, regexp.QuoteMeta("{upstream}"), "(?P<upstream>[^/]+)", 1)
	expr = strings.Replace(expr, regexp.QuoteMeta("{repo}"), "(?P<repo>.+)", 1)
	re, err := regexp.Compile(expr)
	if err != nil {
		return "", "", "", false
	}
	m := re.FindStringSubmatch(name)
	if m == nil {
		return "", "", "", false
	}
	if k := re.SubexpIndex("upstream"); k > 0 {
		upstream = m[k]
	} else if first, _, _ := strings.Cut(r.Match, "/"); !strings.ContainsAny(first, "*?[") {
		upstream = first
	}
	if k := re.SubexpIndex("repo"); k > 0 {
		repo = m[k]
	}
	if upstream == "" || repo == "" {
		return "", "", "", false
	}
	// Substitution may be ambiguous: keep only an exact round trip.
	fwd := strings.NewReplacer("{repo}", repo, "{upstream}", upstream).Replace(r.TrustName)
	return upstream, repo, tag, fwd == name
}
