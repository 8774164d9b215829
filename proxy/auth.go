package proxy

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/policy"
)

func errUnauthorized(msg string) *ociError {
	return &ociError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: msg}
}

// authenticate says who sent r. Without an access configuration everyone
// is anonymous and everything configured is open.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (access.Principal, *ociError) {
	if s.access == nil {
		return access.Principal{Via: "anonymous"}, nil
	}
	p, err := s.access.Authenticate(r)
	if err != nil {
		s.access.Challenge(w, r, "")
		return p, errUnauthorized("trustproxy: " + err.Error())
	}
	return p, nil
}

// limitRate charges one request to the principal's bucket (the address's
// for anonymous clients and failed logins).
func (s *Server) limitRate(r *http.Request, p access.Principal) *ociError {
	key, who := "addr:"+clientAddr(r), clientAddr(r)
	if !p.Anonymous() {
		key, who = "user:"+p.Name, p.Name
	}
	if ok, wait := s.rate.allow(key); !ok {
		return errTooManyRequests(who, wait)
	}
	return nil
}

// authorize decides whether p may make the request rt. Anonymous clients
// (and tokens without the scope) are challenged to log in: 401 with
// WWW-Authenticate; authenticated principals without access get 403.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, p access.Principal, rt route) *ociError {
	if s.access == nil {
		return nil
	}
	if rt.upstream == nil {
		if rt.kind == kindBase && p.Anonymous() {
			// The /v2/ check is how docker login and podman learn how
			// to authenticate.
			s.access.Challenge(w, r, "")
			return errUnauthorized("trustproxy: authentication required")
		}
		return nil
	}
	d := s.access.Authorize(p, rt.repoKey(), rt.name)
	if d.Allowed {
		return nil
	}
	if d.Challenge {
		s.access.Challenge(w, r, rt.name)
		return errUnauthorized("trustproxy: authentication required: " + d.Reason)
	}
	return errDenied("trustproxy: access denied: " + d.Reason)
}

// operator guards the operator endpoints on the client listener: with an
// access configuration only its operators may read them.
func (s *Server) operator(w http.ResponseWriter, r *http.Request) bool {
	if s.access == nil {
		return true
	}
	p, err := s.access.Authenticate(r)
	switch {
	case err != nil || p.Anonymous():
		w.Header().Set("WWW-Authenticate", `Basic realm="trustproxy operators"`)
		http.Error(w, "operator credentials required", http.StatusUnauthorized)
		return false
	case !s.access.Operator(p):
		http.Error(w, fmt.Sprintf("%s is not an operator", p), http.StatusForbidden)
		return false
	}
	return true
}

// checkUpstreamCredentials refuses a configuration in which anyone who
// reaches trustproxy could read with the upstream credentials it holds.
func checkUpstreamCredentials(ups []UpstreamConfig, a *access.Authority) error {
	if a != nil {
		return nil
	}
	for i, u := range ups {
		if u.Username != "" || u.Password != "" || u.Keychain {
			return fmt.Errorf("upstreams[%d] (%s) has credentials, and without access rules anyone who can reach trustproxy could read what they can: "+
				"configure auth and access (an access rule allowing anonymous makes open access explicit)", i, u.Name)
		}
	}
	return nil
}

// serveToken is the token endpoint, rate-limited per address like a
// failed login: every request to it may cost a bcrypt check.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.rate.allow("addr:" + clientAddr(r)); !ok {
		writeError(w, r, errTooManyRequests(clientAddr(r), wait))
		return
	}
	if r.Method == http.MethodPost {
		// The OAuth2 form is small: it arrives promptly or not at all.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(10 * time.Second))
	} else if refuseBody(w, r) {
		return
	}
	s.access.ServeToken(w, r)
}

// confirmInRepo asks the upstream whether rt's repository holds the
// manifest dg. With access rules, a cached manifest no signed target
// vouches for is served to a repository only after this: content cached
// for one team is not readable by another through a different name.
func (s *Server) confirmInRepo(ctx context.Context, rt route, dg digest.Digest) error {
	resp, err := s.upstreamDo(ctx, rt, http.MethodHead, "manifests/"+dg.String(), []string{acceptAll})
	if err != nil {
		return err
	}
	drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return upstreamStatusError(rt.upstream.name, resp.StatusCode, resp.Header.Get("Retry-After"), "manifest "+rt.repoKey()+"@"+dg.String())
	}
	return nil
}

// vouched reports whether a signed target names the approved digest.
func vouched(d policy.Decision) bool {
	return d.Mode != policy.ModeAllow && d.Reason == "" && d.Target != ""
}
