package trustfetch

import (
	"time"

	"go.uber.org/zap"
)

// graceWarnEvery spaces the warnings while expired trust data is used.
const graceWarnEvery = time.Minute

// withinGrace reports whether ix, already past its expiry, may still be
// used under AllowExpiredFor, and logs (at most once a minute) that it is.
func (r *Repository) withinGrace(ix *Index) bool {
	now := r.now()
	if r.cfg.AllowExpiredFor <= 0 || !now.Before(ix.expires.Add(r.cfg.AllowExpiredFor)) {
		return false
	}
	last := r.graceWarned.Load()
	if now.Unix()-last >= int64(graceWarnEvery/time.Second) && r.graceWarned.CompareAndSwap(last, now.Unix()) {
		r.log.Warn("using EXPIRED trust data under allowExpiredFor",
			zap.String("role", ix.expiresRole), zap.Time("expired", ix.expires),
			zap.Duration("allowExpiredFor", r.cfg.AllowExpiredFor), zap.Time("refusedFrom", ix.expires.Add(r.cfg.AllowExpiredFor)))
	}
	return true
}
