//go:build !linux

package e2e

import (
	"testing"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

type netns struct{}

func newNetns(t *testing.T) *netns {
	testenv.SkipOrFail(t, "compose-e2e: a second dockerd runs in a Linux network namespace")
	return nil
}

func (n *netns) exec(name string, args ...string) (string, []string) { return "", nil }

func (n *netns) forward(t *testing.T, target string) string { return "" }
