package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// follow sends method to target and follows the registry's redirects itself
// (blob GETs to a CDN or a presigned storage URL, HEADs to a HEAD-signed
// URL), at most u.maxRedirects hops. Only a hop to the registry's own origin
// (scheme, host and port) goes through the authenticated transport; any
// other origin gets the request with Accept and Range alone: no
// Authorization, no cookie, whatever Go's hostname rule would allow. S3 and
// Azure answer 400 to a presigned URL that also carries a credential, and a
// CDN has no business seeing the token. The method is kept, so a HEAD
// reaches a HEAD-signed URL. Redirects are never cached: signed URLs expire.
func (u *upstream) follow(ctx context.Context, auth http.RoundTripper, method string, target *url.URL, hdr http.Header) (*http.Response, error) {
	cur := target
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, method, cur.String(), nil)
		if err != nil {
			return nil, err
		}
		rt := u.rt
		if originOf(cur) == u.origin {
			for k, v := range hdr {
				req.Header[k] = v
			}
			rt = auth
		} else {
			for _, k := range []string{"Accept", "Range"} {
				if v := hdr.Values(k); len(v) > 0 {
					req.Header[k] = v
				}
			}
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			if hop > 0 {
				return nil, fmt.Errorf("redirected to %s: %w", cur.Redacted(), err)
			}
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return resp, nil
		}
		loc := resp.Header.Get("Location")
		drain(resp.Body)
		if loc == "" {
			return nil, errBadGateway(fmt.Sprintf("trustproxy: upstream %s answered %d without a Location", u.name, resp.StatusCode))
		}
		if hop >= u.maxRedirects {
			return nil, errBadGateway(fmt.Sprintf("trustproxy: upstream %s: more than %d redirects (maxRedirects) for %s %s",
				u.name, u.maxRedirects, method, target.Path))
		}
		next, err := cur.Parse(loc)
		if err != nil {
			return nil, errBadGateway(fmt.Sprintf("trustproxy: upstream %s redirected to an invalid Location: %v", u.name, err))
		}
		if err := u.redirectAllowed(cur, next); err != nil {
			return nil, errBadGateway(fmt.Sprintf("trustproxy: upstream %s: refused redirect from %s to %s: %v",
				u.name, cur.Host, next.Redacted(), err))
		}
		cur = next
	}
}

// redirectAllowed refuses a downgrade from https to http (unless the upstream
// itself is plain http) and destinations no registry redirects to.
func (u *upstream) redirectAllowed(from, to *url.URL) error {
	switch to.Scheme {
	case "https":
	case "http":
		if from.Scheme == "https" && u.base.Scheme == "https" {
			return fmt.Errorf("https to http downgrade (the upstream is configured as https)")
		}
	default:
		return fmt.Errorf("scheme %q is not http(s)", to.Scheme)
	}
	return u.hostAllowed(to.Hostname())
}

// hostAllowed decides whether trustproxy may contact host on behalf of this
// upstream (a redirect target, a token realm). Link-local (cloud metadata),
// unspecified and multicast addresses never; loopback and private addresses
// only when the upstream is itself on a loopback or private address (a
// private installation: Harbor on 10.0.0.5 with its realm on 10.0.0.6).
// Names are allowed: DNS-based tricks are out of scope here, as for every
// HTTP client; network policy must handle them.
func (u *upstream) hostAllowed(host string) error {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		if host == "" {
			return fmt.Errorf("no host")
		}
		return nil
	}
	ip = ip.WithZone("").Unmap()
	switch {
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsMulticast(), ip.IsUnspecified():
		return fmt.Errorf("address %s is link-local, multicast or unspecified", ip)
	case ip.IsLoopback() || ip.IsPrivate():
		if !isPrivateHost(u.base.Hostname()) {
			return fmt.Errorf("address %s is loopback or private but upstream %s is not", ip, u.base.Host)
		}
	}
	return nil
}

// isPrivateHost reports whether host is localhost or a loopback or private
// IP literal.
func isPrivateHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	ip = ip.WithZone("").Unmap()
	return ip.IsLoopback() || ip.IsPrivate()
}

// originOf is scheme://host:port with the scheme's default port made
// explicit, the unit credentials are bound to.
func originOf(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
