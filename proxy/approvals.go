package proxy

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/trustproxy/trustproxy/cache"
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
	// attachmentOf, when set, makes this the grant of attachments (see
	// attachment.go) of that approved subject digest: subject and decision
	// are the subject's approval, so revoking it revokes them too.
	attachmentOf digest.Digest
	// tagged: found under a cosign tag (no subject field to re-check).
	tagged bool
	// attachmentType is the attachment's artifact type, which the rule's
	// attachments setting may exclude.
	attachmentType string
}

// holds reports whether g still approves what it covers under e's current
// trust data and rules.
func (g *grant) holds(e *policy.Engine) bool {
	if !e.StillApproved(g.subject, g.decision) {
		return false
	}
	if g.attachmentOf == "" {
		return true
	}
	r := e.Rule(g.subject.Upstream, g.subject.Repository)
	return r != nil && r.Attachments.Allows(g.attachmentType)
}

// id names the root a grant approves: a newer decision about the same root
// replaces the older one instead of piling up.
func (g *grant) id() string {
	key := g.subject.Upstream + "\x00" + g.subject.Repository + "\x00" +
		g.decision.Rule + "\x00" + g.decision.Target + "\x00" + g.decision.Digest.String()
	if g.attachmentOf != "" {
		key += fmt.Sprintf("\x00attachment\x00%s\x00%t\x00%s", g.attachmentOf, g.tagged, g.attachmentType)
	}
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:16])
}

// label is what the access log's decision field says of a request served
// under g.
func (g *grant) label() string {
	if g.attachmentOf != "" {
		return "attachment-of:" + g.attachmentOf.String()
	}
	return "child-of:" + g.decision.Target
}

// approvalStore keeps approvals where a restarted process and every replica
// sharing the storage read them; *cache.Cache is one.
type approvalStore interface {
	PutRecord(ctx context.Context, set, key, id string, body []byte) error
	Records(ctx context.Context, set, key string) ([]cache.Record, error)
}

// approvals remembers, per repository, which grants cover which digests.
// It is a cache of derivations, never a source of trust: every use re-checks
// the grant against the current trust data. Each coverage is also written
// to the store, so memory is only a bounded cache of it: what is evicted
// (or was never seen by this process) is read back on use.
type approvals struct {
	store approvalStore // nil: memory only
	log   *zap.Logger
	// perRepo bounds one repository's digests, total all of them; beyond
	// them the least recently used go (a repository's own first, then
	// whole idle repositories), never another repository's busy ones.
	perRepo, total int

	mu    sync.Mutex
	repos map[string]*repoCoverage
	lru   *list.List // of *repoCoverage; front: most recently used
	n     int
}

type repoCoverage struct {
	name     string
	byDigest map[digest.Digest]*list.Element // of *coverage
	lru      *list.List
	elem     *list.Element
}

type coverage struct {
	d      digest.Digest
	size   int64 // from the referencing descriptor; -1 unknown
	grants []coveringGrant
}

type coveringGrant struct {
	g     *grant
	id    string
	saved bool // in the store
}

// covered is one digest a grant covers, with its descriptor size.
type covered struct {
	d    digest.Digest
	size int64
}

const (
	maxCoveredPerRepo  = 1 << 15
	maxCovered         = 1 << 18
	maxGrantsPerDigest = 8
	// approvalWriters bounds concurrent store writes of one approval.
	approvalWriters = 8
)

func newApprovals(store approvalStore, log *zap.Logger) *approvals {
	return &approvals{store: store, log: log, perRepo: maxCoveredPerRepo, total: maxCovered,
		repos: map[string]*repoCoverage{}, lru: list.New()}
}

// cover records that g approves items in repo. It returns once the store
// has them, so a replica asked next finds them; a store failure is logged
// and leaves the coverage in this process only.
func (a *approvals) cover(ctx context.Context, repo string, items []covered, g *grant) {
	id := g.id()
	var unsaved []covered
	a.mu.Lock()
	for _, it := range items {
		if a.entryLocked(repo, it.d, it.size).add(g, id, false) {
			unsaved = append(unsaved, it)
		}
	}
	a.mu.Unlock()
	if a.store == nil || len(unsaved) == 0 {
		return
	}
	var eg errgroup.Group
	eg.SetLimit(approvalWriters)
	for _, it := range unsaved {
		eg.Go(func() error {
			body, err := encodeGrant(g, it.size)
			if err == nil {
				err = a.store.PutRecord(ctx, approvalSet, approvalKey(repo, it.d), id, body)
			}
			if err != nil {
				return err
			}
			a.mu.Lock()
			if c := a.peekLocked(repo, it.d); c != nil {
				c.markSaved(id)
			}
			a.mu.Unlock()
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		a.log.Warn("approval kept in this process only: not recorded in storage",
			zap.String("repository", repo), zap.String("target", g.decision.Target), zap.Error(err))
	}
}

// covering returns a grant that still holds for d in repo, and the size
// the approved descriptor gave d. What memory lacks is looked up in the
// store (a restart, another replica's approval, an evicted entry).
func (a *approvals) covering(ctx context.Context, repo string, d digest.Digest, e *policy.Engine) (*grant, int64) {
	a.mu.Lock()
	var grants []*grant
	var size int64 = -1
	if c := a.peekLocked(repo, d); c != nil {
		a.entryLocked(repo, d, -1) // touch
		for _, cg := range c.grants {
			grants = append(grants, cg.g)
		}
		size = c.size
	}
	a.mu.Unlock()
	for _, g := range grants {
		if g.holds(e) {
			return g, size
		}
	}
	if a.store == nil {
		return nil, -1
	}
	recs, err := a.store.Records(ctx, approvalSet, approvalKey(repo, d))
	if err != nil {
		a.log.Warn("reading recorded approvals", zap.String("repository", repo), zap.Stringer("digest", d), zap.Error(err))
		return nil, -1
	}
	type loaded struct {
		g    *grant
		size int64
	}
	var found []loaded
	for _, r := range recs {
		g, sz, err := decodeGrant(r.Body)
		if err != nil || g.id() != r.ID || g.subject.Upstream+"/"+g.subject.Repository != repo {
			a.log.Warn("ignoring malformed approval record", zap.String("repository", repo), zap.Stringer("digest", d), zap.String("id", r.ID), zap.Error(err))
			continue
		}
		found = append(found, loaded{g, sz})
	}
	if len(found) == 0 {
		return nil, -1
	}
	a.mu.Lock()
	for _, l := range found {
		a.entryLocked(repo, d, l.size).add(l.g, l.g.id(), true)
	}
	a.mu.Unlock()
	for _, l := range found {
		if l.g.holds(e) {
			return l.g, l.size
		}
	}
	return nil, -1
}

func approvalKey(repo string, d digest.Digest) string { return repo + "@" + d.String() }

const approvalSet = "approvals"

// peekLocked finds d's coverage in repo without changing any order.
func (a *approvals) peekLocked(repo string, d digest.Digest) *coverage {
	rc := a.repos[repo]
	if rc == nil {
		return nil
	}
	if el := rc.byDigest[d]; el != nil {
		return el.Value.(*coverage)
	}
	return nil
}

// entryLocked returns d's coverage in repo, made most recently used (and
// created if missing), evicting least recently used entries over the bounds.
func (a *approvals) entryLocked(repo string, d digest.Digest, size int64) *coverage {
	rc := a.repos[repo]
	if rc == nil {
		rc = &repoCoverage{name: repo, byDigest: map[digest.Digest]*list.Element{}, lru: list.New()}
		rc.elem = a.lru.PushFront(rc)
		a.repos[repo] = rc
	} else {
		a.lru.MoveToFront(rc.elem)
	}
	if el := rc.byDigest[d]; el != nil {
		rc.lru.MoveToFront(el)
		c := el.Value.(*coverage)
		if size >= 0 {
			c.size = size
		}
		return c
	}
	c := &coverage{d: d, size: size}
	rc.byDigest[d] = rc.lru.PushFront(c)
	a.n++
	for len(rc.byDigest) > a.perRepo {
		a.evictLocked(rc)
	}
	for a.n > a.total {
		victim := a.lru.Back().Value.(*repoCoverage)
		if victim == rc && len(rc.byDigest) <= 1 {
			break
		}
		a.evictLocked(victim)
	}
	return c
}

// evictLocked drops rc's least recently used coverage (and rc once empty).
func (a *approvals) evictLocked(rc *repoCoverage) {
	el := rc.lru.Back()
	c := rc.lru.Remove(el).(*coverage)
	delete(rc.byDigest, c.d)
	a.n--
	if len(rc.byDigest) == 0 {
		a.lru.Remove(rc.elem)
		delete(a.repos, rc.name)
	}
}

// add records g (named id) as covering c; it reports whether g still needs
// to be written to the store.
func (c *coverage) add(g *grant, id string, saved bool) bool {
	for i := range c.grants {
		if c.grants[i].id == id {
			if !saved {
				c.grants[i].g = g // same root, newer decision
			}
			c.grants[i].saved = c.grants[i].saved || saved
			return !c.grants[i].saved
		}
	}
	if len(c.grants) >= maxGrantsPerDigest {
		c.grants = c.grants[1:]
	}
	c.grants = append(c.grants, coveringGrant{g: g, id: id, saved: saved})
	return !saved
}

func (c *coverage) markSaved(id string) {
	for i := range c.grants {
		if c.grants[i].id == id {
			c.grants[i].saved = true
		}
	}
}
