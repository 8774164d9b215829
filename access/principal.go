// Package access authenticates clients (htpasswd users, bearer tokens it
// issues or an external token service issues, client certificates) and
// decides which principal may pull which repository. It knows nothing of
// registries: repositories are "<upstream>/<repository>" strings.
package access

// Principal is who made a request.
type Principal struct {
	// Name is the user, token subject or certificate identity; empty when
	// the client presented no credentials.
	Name string
	// Groups are the configured groups the name belongs to.
	Groups []string
	// Via says how the principal was authenticated: basic, bearer, mtls,
	// or anonymous.
	Via string
	// scopes are the repository names a bearer token grants pull on; nil
	// for other methods.
	scopes map[string]bool
}

// Anonymous reports whether no credentials were presented.
func (p Principal) Anonymous() bool { return p.Name == "" }

// String names the principal for logs.
func (p Principal) String() string {
	if p.Anonymous() {
		return "anonymous"
	}
	return p.Name
}

const (
	viaBasic     = "basic"
	viaBearer    = "bearer"
	viaMTLS      = "mtls"
	viaAnonymous = "anonymous"
)
