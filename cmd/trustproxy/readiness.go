package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/trustproxy/trustproxy/proxy"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// trustReadiness is /readyz's answer about trust: not ready while a trust
// repository vouches for nothing; degraded while one serves persisted or
// previous verified data because its server is not reachable.
func trustReadiness(trusts map[string]*trustfetch.Repository) error {
	names := make([]string, 0, len(trusts))
	for name := range trusts {
		names = append(names, name)
	}
	sort.Strings(names)
	var degraded []string
	for _, name := range names {
		t := trusts[name]
		ix, err := t.Index()
		if err != nil {
			return fmt.Errorf("trust %s: %w", name, err)
		}
		if err := t.Degraded(); err != nil {
			degraded = append(degraded, fmt.Sprintf("trust %s serves persisted verified metadata (targets v%d, expires %s): %v",
				name, ix.Versions().Targets, ix.Expires().UTC().Format("2006-01-02T15:04:05Z"), err))
		}
	}
	if len(degraded) > 0 {
		return &proxy.DegradedError{Reason: strings.Join(degraded, "; ")}
	}
	return nil
}
