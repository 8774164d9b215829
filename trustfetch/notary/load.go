package notary

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"time"

	"github.com/theupdateframework/notary/client"
	"github.com/theupdateframework/notary/storage"
	"github.com/theupdateframework/notary/trustpinning"
	"github.com/theupdateframework/notary/tuf"
	"github.com/theupdateframework/notary/tuf/data"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/trustfetch"
)

// releasesRole is the delegation `docker trust` and DCT sign tags in.
const releasesRole data.RoleName = "targets/releases"

// bundleMediaType marks bundle.json targets for policy (Content "bundle").
const bundleMediaType = "application/vnd.cnab.config.v1+json"

// load verifies gun's trust data with the Notary client against the pin,
// keeping it under the GUN's state directory, and builds the index.
func (s *Source) load(ctx context.Context, st *gunState) (*trustfetch.Index, []Skipped, error) {
	gun := data.GUN(st.gun)
	name := url.PathEscape(st.gun) // "/" escaped: one directory per GUN
	if name == "." || name == ".." || name == "" {
		return nil, nil, fmt.Errorf("notary GUN %q: not a repository name", st.gun)
	}
	dir := filepath.Join(s.cfg.StateDir, name, st.pin.dir)
	cache, err := storage.NewFileStore(dir, "json")
	if err != nil {
		return nil, nil, fmt.Errorf("notary GUN %s: state directory: %w", gun, err)
	}
	remote, err := storage.NewNotaryServerStore(s.cfg.URL, gun, ctxTransport{ctx: ctx, next: s.rt})
	if err != nil {
		return nil, nil, fmt.Errorf("notary GUN %s: %w", gun, err)
	}
	repo, _, err := client.LoadTUFRepo(client.TUFLoadOptions{
		GUN:          gun,
		TrustPinning: trustpinning.TrustPinConfig{Certs: map[string][]string{st.gun: st.pin.ids}, DisableTOFU: true},
		Cache:        cache,
		RemoteStore:  remote,
	})
	if err != nil {
		return nil, nil, explain(st, s.cfg.URL, err)
	}
	expires, role, err := earliestExpiry(repo)
	if err != nil {
		return nil, nil, err
	}
	if !s.now().Before(expires) {
		return nil, nil, fmt.Errorf("notary GUN %s: %s expired at %s: refused", gun, role, expires.UTC().Format(time.RFC3339))
	}
	list, err := client.NewReadOnly(repo).ListTargets(releasesRole, data.CanonicalTargetsRole)
	if err != nil {
		return nil, nil, fmt.Errorf("notary GUN %s: list targets: %w", gun, err)
	}
	var targets []trustfetch.Target
	var skipped []Skipped
	for _, t := range list {
		if t.Role != releasesRole && t.Role != data.CanonicalTargetsRole {
			// As docker pull: other delegations do not sign tags.
			skipped = append(skipped, Skipped{Tag: t.Name, Role: t.Role.String(),
				Reason: "signed only by delegation " + t.Role.String() + "; tags count from targets/releases or targets"})
			continue
		}
		tt, err := toTarget(st, t)
		if err != nil {
			s.log.Warn("notary target ignored", zap.String("gun", st.gun), zap.String("target", t.Name), zap.Error(err))
			skipped = append(skipped, Skipped{Tag: t.Name, Role: t.Role.String(), Reason: err.Error()})
			continue
		}
		targets = append(targets, tt)
	}
	sort.Slice(skipped, func(i, j int) bool { return skipped[i].Tag < skipped[j].Tag })
	v := trustfetch.Versions{
		Root:      int64(repo.Root.Signed.Version),
		Timestamp: int64(repo.Timestamp.Signed.Version),
		Snapshot:  int64(repo.Snapshot.Signed.Version),
		Targets:   int64(repo.Targets[data.CanonicalTargetsRole].Signed.Version),
	}
	return trustfetch.NewIndex(targets, v, expires, role), skipped, nil
}

// Skipped is a Notary target the index leaves out, and why.
type Skipped struct {
	Tag, Role, Reason string
}

// explain turns the Notary client's errors into what a person can act on.
func explain(st *gunState, server string, err error) error {
	var notExist client.ErrRepositoryNotExist
	var pinFail *trustpinning.ErrValidationFail
	switch {
	case errors.As(err, &notExist):
		return fmt.Errorf("notary GUN %s: %s has no trust data for it (unsigned)", st.gun, server)
	case errors.As(err, &pinFail):
		return fmt.Errorf("notary GUN %s: root.json does not match the root pinned for %q (key IDs %v): %w", st.gun, st.pin.GUN, st.pin.ids, err)
	}
	return fmt.Errorf("notary GUN %s: verify trust data from %s: %w", st.gun, server, err)
}

// earliestExpiry is the first expiry among the roles an index is built
// from: root, timestamp, snapshot, targets and targets/releases.
func earliestExpiry(repo *tuf.Repo) (time.Time, string, error) {
	if repo.Root == nil || repo.Timestamp == nil || repo.Snapshot == nil || repo.Targets[data.CanonicalTargetsRole] == nil {
		return time.Time{}, "", errors.New("notary: incomplete trust data (root, timestamp, snapshot and targets are required)")
	}
	exp, role := repo.Root.Signed.Expires, "root"
	check := func(t time.Time, r string) {
		if t.Before(exp) {
			exp, role = t, r
		}
	}
	check(repo.Timestamp.Signed.Expires, "timestamp")
	check(repo.Snapshot.Signed.Expires, "snapshot")
	check(repo.Targets[data.CanonicalTargetsRole].Signed.Expires, "targets")
	if rel := repo.Targets[releasesRole]; rel != nil {
		check(rel.Signed.Expires, releasesRole.String())
	}
	return exp, role, nil
}

// toTarget maps a Notary target to an index target "<gun>:<tag>".
func toTarget(st *gunState, t *client.TargetWithRole) (trustfetch.Target, error) {
	sum, ok := t.Hashes["sha256"]
	if !ok || len(sum) != 32 {
		return trustfetch.Target{}, errors.New("no sha256 hash")
	}
	tt := trustfetch.Target{Name: st.gun + ":" + t.Name, Length: t.Length, SHA256: hex.EncodeToString(sum), Role: t.Role.String()}
	if t.Custom != nil && len(*t.Custom) > 0 {
		tt.Custom = json.RawMessage(*t.Custom)
	}
	if st.pin.Content == ContentBundle {
		c, err := withMediaType(tt.Custom, bundleMediaType)
		if err != nil {
			return trustfetch.Target{}, err
		}
		tt.Custom = c
	}
	return tt, nil
}

// withMediaType adds "mediaType" to a custom object.
func withMediaType(custom json.RawMessage, mt string) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(custom) > 0 && string(custom) != "null" {
		if err := json.Unmarshal(custom, &m); err != nil {
			return nil, fmt.Errorf("custom data is not a JSON object: %w", err)
		}
	}
	m["mediaType"], _ = json.Marshal(mt)
	return json.Marshal(m)
}

// ctxTransport ties the Notary client's requests, which carry no context,
// to the load's context.
type ctxTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

func (t ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.next.RoundTrip(req.WithContext(t.ctx))
}
