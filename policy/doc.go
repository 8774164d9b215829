// Package policy turns a pull request's subject (upstream, repository, tag or
// digest) and the current trust data into a decision: which digest a tag may
// resolve to, whether manifest bytes may be served, and why not.
package policy
