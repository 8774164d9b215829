package proxy

import (
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/policy"
)

// grant is one approval decision of a root artifact (a manifest a client
// asked for by tag or by a digest TUF names). Everything the artifact
// references (platform manifests, blobs, bundle images) is served under it
// only while policy says the grant still holds, so removing the target from
// TUF revokes the whole tree at the next refresh.
type grant struct {
	subject  policy.Subject
	decision policy.Decision
}

// approvals remembers, per repository, which grants cover which digests.
// It is a cache of derivations, never a source of trust: every use re-checks
// the grant against the current trust data.
type approvals struct {
	mu     sync.RWMutex
	byRepo map[string]map[digest.Digest]*coverage
	n      int
}

type coverage struct {
	size   int64 // from the referencing descriptor; -1 unknown
	grants []*grant
}

// maxCovered bounds memory; when reached the map starts over, and clients
// simply fetch the manifest again (which they do on every pull anyway).
const (
	maxCovered         = 1 << 20
	maxGrantsPerDigest = 8
)

func newApprovals() *approvals {
	return &approvals{byRepo: map[string]map[digest.Digest]*coverage{}}
}

// cover records that g approves d (with its descriptor size) in repo.
func (a *approvals) cover(repo string, d digest.Digest, size int64, g *grant) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n >= maxCovered {
		clear(a.byRepo)
		a.n = 0
	}
	m := a.byRepo[repo]
	if m == nil {
		m = map[digest.Digest]*coverage{}
		a.byRepo[repo] = m
	}
	c := m[d]
	if c == nil {
		c = &coverage{size: size}
		m[d] = c
		a.n++
	}
	if size >= 0 {
		c.size = size
	}
	for i, old := range c.grants {
		if old.decision.Rule == g.decision.Rule && old.decision.Target == g.decision.Target && old.decision.Digest == g.decision.Digest {
			c.grants[i] = g // same root, newer decision
			return
		}
	}
	if len(c.grants) >= maxGrantsPerDigest {
		c.grants = c.grants[1:]
	}
	c.grants = append(c.grants, g)
}

// covering returns a grant that still holds for d in repo, and the size
// the approved descriptor gave d.
func (a *approvals) covering(repo string, d digest.Digest, e *policy.Engine) (*grant, int64) {
	a.mu.RLock()
	c := a.byRepo[repo][d]
	var grants []*grant
	var size int64 = -1
	if c != nil {
		grants = append(grants, c.grants...)
		size = c.size
	}
	a.mu.RUnlock()
	for _, g := range grants {
		if e.StillApproved(g.subject, g.decision) {
			return g, size
		}
	}
	return nil, -1
}
