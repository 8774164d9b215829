package trustfetch

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Reasons a repository vouches for nothing; match them with errors.Is on
// the error Index returns.
var (
	// ErrNoTrustData: no refresh has succeeded since Open.
	ErrNoTrustData = errors.New("no verified trust data yet")
	// ErrExpired: the last verified trust data has expired and no refresh
	// has replaced it (freeze protection).
	ErrExpired = errors.New("trust data expired")
)

// UnavailableError is returned by Index when the repository vouches for
// nothing. It matches ErrNoTrustData or ErrExpired with errors.Is.
type UnavailableError struct {
	Repository string
	Reason     error     // ErrNoTrustData or ErrExpired
	Expired    time.Time // when Reason is ErrExpired: the earliest expiry
	Role       string    // when Reason is ErrExpired: the role that expired first
	// LastRefresh is the most recent refresh failure, nil if none.
	LastRefresh error
}

func (e *UnavailableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trust repository %q vouches for nothing: ", e.Repository)
	if errors.Is(e.Reason, ErrExpired) {
		fmt.Fprintf(&b, "its trust data expired at %s (%s.json) and no refresh has replaced it",
			e.Expired.UTC().Format(time.RFC3339), e.Role)
	} else {
		b.WriteString("no verified trust data yet")
	}
	if e.LastRefresh != nil {
		fmt.Fprintf(&b, "; last refresh failed: %v", e.LastRefresh)
	}
	return b.String()
}

func (e *UnavailableError) Unwrap() error { return e.Reason }
