// Package refname is the one place trustproxy spells repository names and
// tags the way registries and docker do, on github.com/distribution/reference
// (the grammar docker, containerd and distribution share) rather than
// regular expressions of its own.
package refname

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// DockerHub is Docker Hub's domain as references spell it
// (docker.io/library/alpine).
const DockerHub = "docker.io"

// IsDockerHub reports whether host is one of the names of Docker Hub's
// registry.
func IsDockerHub(host string) bool {
	switch host {
	case DockerHub, "index.docker.io", "registry-1.docker.io":
		return true
	}
	return false
}

// Repository checks repo, a repository path on the registry at host, and
// returns it as that registry names it: on Docker Hub a one-component name
// is an official image under library/ (alpine → library/alpine).
func Repository(host, repo string) (string, error) {
	if IsDockerHub(host) {
		host = DockerHub
	}
	if repo == "" || strings.ContainsAny(repo, ":@") {
		return "", fmt.Errorf("invalid repository name %q", repo)
	}
	n, err := reference.ParseNormalizedNamed(host + "/" + repo)
	if err != nil {
		return "", fmt.Errorf("invalid repository name %q: %w", repo, err)
	}
	if reference.Domain(n) != host {
		return "", fmt.Errorf("invalid repository name %q", repo)
	}
	return reference.Path(n), nil
}

var anchoredTag = regexp.MustCompile(`^` + reference.TagRegexp.String() + `$`)

// IsTag reports whether s is a valid tag (up to 128 characters of
// [A-Za-z0-9_.-], not starting with . or -).
func IsTag(s string) bool { return anchoredTag.MatchString(s) }
