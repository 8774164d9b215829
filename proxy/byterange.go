package proxy

import (
	"net/http"

	"errors"
	"github.com/opencontainers/go-digest"
	"strconv"
	"strings"
)

// errRangeNotSatisfiable: a well-formed range that selects no byte of the
// blob (RFC 9110 §14.1.1); the answer is 416 with "Content-Range: bytes */n".
var errRangeNotSatisfiable = errors.New("range not satisfiable")

// parseRange reads a Range header the way RFC 9110 §14 asks: a single
// byte range ("a-b", "a-", "-n") is served as 206; a last position past the
// end is clamped; anything the server does not understand (another unit,
// bad syntax, several ranges) is ignored and the whole blob is served.
// Only a well-formed range that selects nothing is an error.
func parseRange(h string, total int64) (start, length int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || total < 0 || strings.Contains(spec, ",") {
		return 0, total, false, nil
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok || !digits(a) || !digits(b) || a == "" && b == "" {
		return 0, total, false, nil
	}
	if a == "" { // suffix: the last n bytes
		n, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil { // more digits than int64: longer than any blob
			n = total
		}
		if n == 0 || total == 0 {
			return 0, 0, false, errRangeNotSatisfiable
		}
		n = min(n, total)
		return total - n, n, true, nil
	}
	first, perr := strconv.ParseInt(a, 10, 64)
	if perr != nil || first >= total {
		return 0, 0, false, errRangeNotSatisfiable
	}
	last := total - 1
	if b != "" {
		l, perr := strconv.ParseInt(b, 10, 64)
		if perr == nil && l < first {
			return 0, total, false, nil // "5-1" is invalid: ignored
		}
		if perr == nil && l < last {
			last = l
		}
	}
	return first, last - first + 1, true, nil
}

// digits reports whether s is empty or only ASCII digits.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// rangeHeader is the Range to honour: none when an If-Range names another
// representation (RFC 9110 §13.1.5; a blob's only validator is its ETag).
func rangeHeader(r *http.Request, dg digest.Digest) string {
	if ir := r.Header.Get("If-Range"); ir != "" && ir != `"`+dg.String()+`"` {
		return ""
	}
	return r.Header.Get("Range")
}
