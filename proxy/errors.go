package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// ociError is one entry of an OCI distribution error body. Everything the
// proxy refuses is answered with one of these, never with a bare status.
type ociError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
	// RetryAfter is passed to the client as Retry-After (upstream 429).
	RetryAfter string `json:"-"`
}

func (e *ociError) Error() string { return e.Code + ": " + e.Message }

func errDenied(msg string) *ociError {
	return &ociError{Status: http.StatusForbidden, Code: "DENIED", Message: msg}
}

func errUnsupported(msg string) *ociError {
	return &ociError{Status: http.StatusMethodNotAllowed, Code: "UNSUPPORTED", Message: msg}
}

func errNameUnknown(msg string) *ociError {
	return &ociError{Status: http.StatusNotFound, Code: "NAME_UNKNOWN", Message: msg}
}

func errDigestInvalid(msg string) *ociError {
	return &ociError{Status: http.StatusBadRequest, Code: "DIGEST_INVALID", Message: msg}
}

func errNameInvalid(msg string) *ociError {
	return &ociError{Status: http.StatusBadRequest, Code: "NAME_INVALID", Message: msg}
}

func errBadGateway(msg string) *ociError {
	return &ociError{Status: http.StatusBadGateway, Code: "UNKNOWN", Message: msg}
}

func errInternal(msg string) *ociError {
	return &ociError{Status: http.StatusInternalServerError, Code: "UNKNOWN", Message: msg}
}

// asOCIError turns any error into the OCI error to send; unknown errors are
// internal errors whose text still reaches the client, so a person can act.
func asOCIError(err error) *ociError {
	var oe *ociError
	if errors.As(err, &oe) {
		return oe
	}
	return errInternal(err.Error())
}

func writeError(w http.ResponseWriter, r *http.Request, err error) *ociError {
	oe := asOCIError(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if oe.RetryAfter != "" {
		h.Set("Retry-After", oe.RetryAfter)
	}
	body, _ := json.Marshal(struct {
		Errors []*ociError `json:"errors"`
	}{[]*ociError{oe}})
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(oe.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return oe
}

// upstreamStatusError maps an upstream HTTP failure to what the client sees.
// It never turns 401/403/429/5xx into a 404: a client must be able to tell
// "does not exist" from "could not ask".
func upstreamStatusError(upstream string, status int, retryAfter, what string) *ociError {
	switch {
	case status == http.StatusNotFound:
		return &ociError{Status: http.StatusNotFound, Code: "MANIFEST_UNKNOWN",
			Message: fmt.Sprintf("%s: not found on upstream %s", what, upstream)}
	case status == http.StatusTooManyRequests:
		return &ociError{Status: http.StatusTooManyRequests, Code: "TOOMANYREQUESTS", RetryAfter: retryAfter,
			Message: fmt.Sprintf("%s: upstream %s is rate limiting trustproxy (429); retry later", what, upstream)}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &ociError{Status: http.StatusBadGateway, Code: "UNAUTHORIZED",
			Message: fmt.Sprintf("%s: upstream %s refused trustproxy's credentials (%d); check the upstream's auth in the trustproxy config", what, upstream, status)}
	default:
		return &ociError{Status: http.StatusBadGateway, Code: "UNKNOWN",
			Message: fmt.Sprintf("%s: upstream %s answered %d", what, upstream, status)}
	}
}
