package policy

import (
	"context"

	"github.com/trustproxy/trustproxy/trustfetch"
)

// ScopedSource is a trust source that keeps separate trust data per trust
// name, loaded when first asked for: a Notary v1 server, with one GUN per
// repository (*notary.Source). Its targets are still "<trust name>:<tag>".
type ScopedSource interface {
	TrustSource
	IndexFor(ctx context.Context, trustName string) (*trustfetch.Index, error)
}

// indexOf returns the index that vouches for trustName. A scoped source
// bounds the load of a new trust name itself, so the engine's calls that
// carry no context hand it none.
func indexOf(ts TrustSource, trustName string) (*trustfetch.Index, error) {
	if s, ok := ts.(ScopedSource); ok {
		return s.IndexFor(context.Background(), trustName)
	}
	return ts.Index()
}
