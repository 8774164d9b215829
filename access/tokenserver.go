package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxTokenForm bounds the body of an OAuth2 password grant (POST /token).
const maxTokenForm = 16 << 10

// ServeToken is the Docker token endpoint (GET with Basic credentials or a
// client certificate, or the OAuth2 password grant containerd POSTs). It
// signs a token for the requested repository pull scopes; whether the
// principal may pull a repository is decided again on every request, by
// the access rules, so a token never outlives a rule.
func (a *Authority) ServeToken(w http.ResponseWriter, r *http.Request) {
	if a.issuer == nil {
		tokenError(w, http.StatusNotFound, "UNSUPPORTED", "this trustproxy does not issue tokens")
		return
	}
	var p Principal
	var err error
	switch r.Method {
	case http.MethodGet:
		_ = r.ParseForm() // the query only: a GET has no body to read
		p, err = a.Authenticate(r)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
		if perr := r.ParseForm(); perr != nil {
			tokenError(w, http.StatusBadRequest, "UNSUPPORTED", "token request: "+perr.Error())
			return
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			// containerd falls back to GET on 400.
			tokenError(w, http.StatusBadRequest, "UNSUPPORTED", fmt.Sprintf("grant_type %q is not supported (use password, or GET with Basic credentials)", gt))
			return
		}
		name, pass := r.PostForm.Get("username"), r.PostForm.Get("password")
		if a.users == nil || !a.users.check(name, pass) {
			err = fmt.Errorf("%w: unknown user or wrong password", ErrBadCredentials)
		} else {
			p = a.principal(name, viaBasic)
		}
	default:
		tokenError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", r.Method+" is not supported by the token endpoint")
		return
	}
	if err != nil || p.Via == viaBearer {
		if err == nil {
			err = errors.New("a token cannot be exchanged for a token")
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", a.realm))
		tokenError(w, http.StatusUnauthorized, "UNAUTHORIZED", err.Error())
		return
	}
	if svc := r.Form.Get("service"); svc != "" && svc != a.issuer.service {
		tokenError(w, http.StatusBadRequest, "UNSUPPORTED", fmt.Sprintf("service %q is not %q", svc, a.issuer.service))
		return
	}
	var names []string
	for _, s := range r.Form["scope"] {
		names = append(names, pullScopes(s)...)
	}
	raw, issued, err := a.issuer.issue(p.Name, names)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "UNKNOWN", "sign token: "+err.Error())
		return
	}
	body, _ := json.Marshal(map[string]any{
		"token": raw, "access_token": raw,
		"expires_in": int(a.issuer.cfg.Expiry / time.Second), "issued_at": issued.UTC().Format(time.RFC3339),
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// pullScopes returns the repository names a scope parameter asks pull on
// ("repository:library/alpine:pull", several separated by spaces). Other
// actions are never granted: trustproxy serves pulls only.
func pullScopes(param string) []string {
	var names []string
	for _, s := range strings.Fields(param) {
		typ, rest, ok := strings.Cut(s, ":")
		if !ok || typ != "repository" {
			continue
		}
		i := strings.LastIndex(rest, ":")
		if i <= 0 {
			continue
		}
		for _, act := range strings.Split(rest[i+1:], ",") {
			if act == "pull" || act == "*" {
				names = append(names, rest[:i])
				break
			}
		}
	}
	return names
}

// realmFor is the token endpoint's URL for a client of r.
func (is *issuer) realmFor(r *http.Request) string {
	if is.cfg.Realm != "" {
		return is.cfg.Realm
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/token"
}

func tokenError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
