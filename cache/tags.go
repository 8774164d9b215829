package cache

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// tagsRoot holds tag hints: /tags/<repository>/<tag> → a digest's text.
// A hint is never evidence; whoever reads one verifies what it names like
// any other manifest (the proxy runs policy on it). Mirror import writes
// them so that an offline proxy can resolve the tags whose trust target
// does not hash the manifest itself (a CNAB bundle signed by its
// bundle.json).
const tagsRoot = "/tags"

var (
	tagHintRepo = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+|:[0-9]+)?[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagHintTag  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

func tagPath(repo, tag string) (string, error) {
	if !tagHintRepo.MatchString(repo) || !tagHintTag.MatchString(tag) || strings.Contains(repo, "..") {
		return "", fmt.Errorf("tag hint %s:%s: invalid repository or tag", repo, tag)
	}
	return tagsRoot + "/" + repo + "/" + tag, nil
}

// PutTagHint records that repo:tag names dgst (atomically replacing any
// earlier hint). repo is "<upstream>/<repository>".
func (c *Cache) PutTagHint(ctx context.Context, repo, tag string, dgst digest.Digest) error {
	if err := validateDigest("tag hint", dgst); err != nil {
		return err
	}
	p, err := tagPath(repo, tag)
	if err != nil {
		return err
	}
	k := key{kindManifest, dgst} // only marks the write pending; tag hints are not indexed
	c.beginWrite(k)
	defer func() {
		c.mu.Lock()
		c.endWriteLocked(k)
		c.mu.Unlock()
	}()
	if err := c.writeObject(ctx, k, p, strings.NewReader(dgst.String())); err != nil {
		return fmt.Errorf("tag hint %s:%s: %w", repo, tag, err)
	}
	return nil
}

// TagHint returns the digest last recorded for repo:tag, or an error
// wrapping ErrNotFound.
func (c *Cache) TagHint(ctx context.Context, repo, tag string) (digest.Digest, error) {
	p, err := tagPath(repo, tag)
	if err != nil {
		return "", err
	}
	b, err := c.readSmall(ctx, p, 256)
	if err != nil {
		return "", err
	}
	d, err := digest.Parse(string(b))
	if err != nil {
		return "", fmt.Errorf("tag hint %s:%s: %w", repo, tag, err)
	}
	return d, nil
}
