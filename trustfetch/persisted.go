package trustfetch

import (
	"context"
	"errors"

	"go.uber.org/zap"
)

// errNotRefreshedYet is what Degraded says between a background Open and
// the first refresh that reaches the trust server.
var errNotRefreshedYet = errors.New("the trust server has not been reached since start")

// startFromStateLocked is the restart case: nothing is loaded yet and the
// trust server could not be asked (onlineErr). The metadata verified before
// the restart is in the state directory; verified again against the stored
// root, and unexpired (AllowExpiredFor applies), it vouches for what it
// vouched for then until it expires or a refresh succeeds. The result is
// onlineErr either way: the refresh did fail, so Run retries soon and
// Degraded says so. r.mu is held.
func (r *Repository) startFromStateLocked(ctx context.Context, onlineErr error) error {
	ix, verified, err := r.refresh(ctx, nil, true)
	if err != nil {
		r.log.Debug("no usable persisted trust data", zap.Error(err))
		return onlineErr
	}
	r.current.Store(ix)
	r.verified = verified
	r.fromState = true
	r.log.Warn("trust server not reached; serving the persisted, verified trust data until it expires or a refresh succeeds",
		zap.Int64("root", ix.versions.Root), zap.Int64("targets", ix.versions.Targets), zap.Int("count", ix.Len()),
		zap.Time("expires", ix.expires), zap.NamedError("reason", onlineErr))
	return onlineErr
}

// Degraded reports why the trust data in use is not fresh from the trust
// server: the last refresh failed, or none has been tried since a
// background Open, and the persisted or previous verified data is served
// until it expires. It is nil when the last refresh succeeded, and when
// nothing is served (Index says why).
func (r *Repository) Degraded() error {
	if r.current.Load() == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// withdrawStateLocked stops serving the index loaded from the state
// directory: the trust server answered, and what it answered failed
// verification (a rollback, a bad signature, expired metadata). Persisted
// data stands in for an unreachable server, never for a refused one.
// r.mu is held.
func (r *Repository) withdrawStateLocked(refusal error) {
	r.current.Store(nil)
	r.fromState = false
	r.log.Error("trust server answered with metadata that fails verification; the persisted trust data is no longer served",
		zap.Error(refusal))
}
