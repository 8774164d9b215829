package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/proxy/cnab"
	"github.com/trustproxy/trustproxy/publish"
)

// trustSub is one `trustproxy trust` subcommand.
type trustSub struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func trustSubs() map[string]trustSub {
	return map[string]trustSub{
		"init":      {"create a TUF repository and its keys", trustInit},
		"add":       {"sign an image tag: resolve its digest and stage a target", trustAdd},
		"remove":    {"stage the removal of targets (revokes them once published)", trustRemove},
		"delegate":  {"delegate target names to a new role with its own keys", trustDelegate},
		"publish":   {"sign and publish staged changes, a new snapshot and timestamp", trustPublish},
		"timestamp": {"re-sign only the timestamp (run from cron)", trustTimestamp},
		"rotate":    {"replace the keys of a top-level role, publishing a new root", trustRotate},
		"list":      {"print the targets of the working copy with role and digest", trustList},
	}
}

const trustUsageFooter = `
A trust repository is a directory servable as-is by any static web server
(metadata URL <base>/metadata, targets URL <base>/targets) or usable as a
local directory. Pin <repo>/metadata/1.root.json in trustproxy's
configuration; clients follow later root rotations from it.

Private keys live in --keys DIR, one directory per role (<role>/<keyid>.key,
mode 0600), never inside the repository. add, remove and delegate stage
changes in <repo>/staging; publish signs and publishes them.

Run "trustproxy trust <command> -h" for the flags of a command.
`

func runTrust(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := trustSubs()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		trustUsage(stderr, subs)
		if len(args) == 0 {
			return errors.New("missing command")
		}
		return flag.ErrHelp
	}
	sub, ok := subs[args[0]]
	if !ok {
		trustUsage(stderr, subs)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return sub.run(ctx, args[1:], stdout, stderr)
}

func trustUsage(w io.Writer, subs map[string]trustSub) {
	fmt.Fprintln(w, "usage: trustproxy trust <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, subs[n].summary)
	}
	fmt.Fprint(w, trustUsageFooter)
}

// trustFlags is the flag set of a subcommand with the flags most share.
type trustFlags struct {
	fs   *flag.FlagSet
	repo string
	keys string
}

// Help texts of --keys: commands that always sign, and staging commands
// that sign only with --publish.
const (
	trustKeysRequired = "private keys `DIR`, outside the repository (required)"
	trustKeysPublish  = "private keys `DIR`, outside the repository (needed with --publish)"
)

// newTrustFlags makes a subcommand's flag set. synopsis is the usage line
// after "trustproxy trust", about explains the command, keysHelp documents
// --keys ("" for commands that never sign).
func newTrustFlags(name, synopsis, about string, stderr io.Writer, keysHelp string) *trustFlags {
	f := &trustFlags{fs: flag.NewFlagSet("trust "+name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.repo, "repo", "", "trust repository `DIR` (required)")
	if keysHelp != "" {
		f.fs.StringVar(&f.keys, "keys", "", keysHelp)
	}
	f.fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: trustproxy trust %s\n\n%s\n\nflags:\n", synopsis, strings.TrimSpace(about))
		f.fs.PrintDefaults()
	}
	return f
}

// parse parses flags and positional arguments in any order (the flag
// package alone stops at the first positional argument).
func (f *trustFlags) parse(args []string, needKeys bool) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, err
		}
		rest := f.fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if f.repo == "" {
		return nil, f.usageError("--repo DIR is required")
	}
	if needKeys && f.keys == "" {
		return nil, f.usageError("--keys DIR is required")
	}
	return pos, nil
}

func (f *trustFlags) usageError(format string, a ...any) error {
	f.fs.Usage()
	return fmt.Errorf(format, a...)
}

// parseNoArgs parses a subcommand that takes flags only.
func (f *trustFlags) parseNoArgs(args []string, needKeys bool) error {
	pos, err := f.parse(args, needKeys)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return f.usageError("unexpected arguments %q", pos)
	}
	return nil
}

func (f *trustFlags) open() (*publish.Repo, error) {
	return publish.Open(f.repo, f.keys, publish.Options{})
}

// trustStrings is a repeatable flag that also splits on commas.
type trustStrings []string

func (l *trustStrings) String() string { return strings.Join(*l, ",") }

func (l *trustStrings) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// trustKV is a repeatable k=v flag.
type trustKV map[string]string

func (m trustKV) String() string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (m trustKV) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	m[k] = val
	return nil
}

func trustInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newTrustFlags("init", "init --repo DIR --keys DIR [flags]", `
Create a new TUF repository (consistent snapshots) and generate its root,
targets, snapshot and timestamp keys, then publish version 1 with no targets.`, stderr, trustKeysRequired)
	keyType := f.fs.String("key-type", publish.KeyEd25519, "key `TYPE`: ed25519, ecdsa (P-256) or rsa (3072-bit RSA-PSS)")
	rootThreshold := f.fs.Int("root-threshold", 1, "number of root keys that must sign a root")
	rootKeys := f.fs.Int("root-keys", 0, "number of root keys to generate (default: the threshold)")
	expires := f.fs.String("expires", "", "metadata lifetimes, `ROLE=DUR,...` (e.g. timestamp=1d,targets=30d; units d, h, m, s); defaults: root=365d targets=90d snapshot=7d timestamp=1d")
	if err := f.parseNoArgs(args, true); err != nil {
		return err
	}
	exp, err := parseTrustExpiry(*expires)
	if err != nil {
		return err
	}
	r, err := publish.Init(ctx, f.repo, f.keys, publish.InitOptions{
		KeyType: *keyType, RootThreshold: *rootThreshold, RootKeys: *rootKeys, Expiry: exp,
	})
	if err != nil {
		return err
	}
	n := *rootKeys
	if n == 0 {
		n = *rootThreshold
	}
	root, err := os.ReadFile(r.RootPath())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "initialized trust repository %s (%s keys in %s, root %d-of-%d); pin %s (sha256 %x)\n",
		f.repo, *keyType, f.keys, *rootThreshold, n, r.RootPath(), sha256.Sum256(root))
	return nil
}

// parseTrustExpiry parses "role=dur,role=dur"; dur is a Go duration or a
// whole number of days ("90d").
func parseTrustExpiry(s string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		role, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || role == "" {
			return nil, fmt.Errorf("--expires: want ROLE=DURATION, got %q", part)
		}
		var d time.Duration
		if days, ok := strings.CutSuffix(v, "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil {
				return nil, fmt.Errorf("--expires %s: %q is not a number of days", role, v)
			}
			d = time.Duration(n) * 24 * time.Hour
		} else {
			var err error
			if d, err = time.ParseDuration(v); err != nil {
				return nil, fmt.Errorf("--expires %s: %w", role, err)
			}
		}
		if d <= 0 {
			return nil, fmt.Errorf("--expires %s: %q must be positive", role, v)
		}
		out[role] = d
	}
	return out, nil
}

// trustAddFlags are the options of `trust add`.
type trustAddFlags struct {
	*trustFlags
	name     string
	role     string
	insecure bool
	publish  bool
	custom   trustKV
	// bundleIndex signs a CNAB bundle's index instead of its bundle.json.
	bundleIndex bool
	inToto      inTotoFlags
}

func trustAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := &trustAddFlags{custom: trustKV{}}
	f.trustFlags = newTrustFlags("add", "add <image ref> --repo DIR [flags]", `
Resolve the tag's manifest from its registry and stage target
<trust name>:<tag> with the sha256 and length of the exact manifest bytes
and custom {"mediaType": ...}. The trust name defaults to
<registry host>/<repository>, Docker Hub spelled docker.io
(docker.io/library/alpine:3.20). The manifest is also stored under targets/
so any TUF client can download it. Registry credentials come from the
docker config (~/.docker/config.json).`, stderr, trustKeysPublish)
	f.fs.StringVar(&f.name, "name", "", "trust `NAME` instead of <registry host>/<repository> (e.g. when adding from a mirror)")
	f.fs.StringVar(&f.role, "role", "", "targets `ROLE` to add to (default: the most specific role delegated the name, else targets)")
	f.fs.BoolVar(&f.insecure, "insecure", false, "allow a plain-HTTP registry")
	f.fs.BoolVar(&f.publish, "publish", false, "publish right away (needs --keys)")
	f.fs.Var(f.custom, "custom", "extra custom metadata `KEY=VALUE` (repeatable)")
	f.fs.BoolVar(&f.bundleIndex, "bundle-index", false, "for a CNAB bundle, sign the index digest (porter's bundle digest) instead of bundle.json")
	f.inToto.register(f.fs)
	pos, err := f.parse(args, false)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return f.usageError("want exactly one image reference, got %d", len(pos))
	}
	if f.publish && f.keys == "" {
		return f.usageError("--publish needs --keys DIR")
	}
	repo, err := f.open()
	if err != nil {
		return err
	}
	req, err := planTrustAdd(ctx, pos[0], f)
	if err != nil {
		return err
	}
	added, err := req.apply(repo)
	if err != nil {
		return err
	}
	t := added[0]
	summary := fmt.Sprintf("added %s to role %s: sha256:%s, %d bytes", t.Name, t.Role, t.SHA256, t.Length)
	if req.desc.MediaType != "" {
		summary += ", " + req.desc.MediaType
	}
	if len(added) > 1 {
		summary += fmt.Sprintf(", with %d more target(s)", len(added)-1)
	}
	return finishTrustEdit(ctx, repo, f.publish, summary, stdout, stderr)
}

// trustAddRequest is everything `trust add` puts into the repository for
// one image reference, built before anything is changed.
type trustAddRequest struct {
	role     string
	target   string // <trust name>:<tag>
	desc     publish.Descriptor
	manifest []byte
	// custom is the target's custom metadata; see trustTargetCustom.
	custom map[string]any
	// bundleJSON is set for a CNAB bundle: the in-toto subject is its
	// bundle.json, whichever of bundle.json or the index the target hashes.
	bundleJSON digest.Digest
	// extra are further target files published together with the image
	// (e.g. in-toto layouts, links and public keys named after the target's
	// repository, per CNAB Security 301).
	extra []trustExtraTarget
}

type trustExtraTarget struct {
	name   string
	data   []byte
	custom map[string]any
}

// planTrustAdd resolves ref and decides what to add. Options that attach
// more to a target (in-toto metadata, CNAB bundle handling) extend the
// request here, after the manifest is known.
func planTrustAdd(ctx context.Context, ref string, f *trustAddFlags) (*trustAddRequest, error) {
	r, err := publish.ParseReference(ref, f.insecure)
	if err != nil {
		return nil, err
	}
	target, err := publish.TargetName(r, f.name)
	if err != nil {
		return nil, err
	}
	opts := []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("trustproxy"), remote.WithContext(ctx)}
	desc, manifest, err := publish.ResolveImage(ctx, r, opts...)
	if err != nil {
		return nil, err
	}
	custom, err := trustTargetCustom(desc, f.custom)
	if err != nil {
		return nil, err
	}
	req := &trustAddRequest{role: f.role, target: target, desc: desc, manifest: manifest, custom: custom}
	if cnab.IsBundle(desc.MediaType, manifest) {
		if err := planBundle(ctx, req, r, f.bundleIndex, opts...); err != nil {
			return nil, err
		}
	} else if f.bundleIndex {
		return nil, fmt.Errorf("--bundle-index: %s is not a CNAB bundle", ref)
	}
	if err := f.inToto.plan(req, strings.TrimSuffix(target, ":"+tagOf(target))); err != nil {
		return nil, err
	}
	return req, nil
}

// trustTargetCustom builds a target's custom metadata: the manifest's media
// type plus --custom entries, which may not override what is computed.
func trustTargetCustom(desc publish.Descriptor, extra trustKV) (map[string]any, error) {
	custom := map[string]any{}
	if desc.MediaType != "" {
		custom["mediaType"] = desc.MediaType
	}
	for k, v := range extra {
		if _, ok := custom[k]; ok {
			return nil, fmt.Errorf("--custom %s: set from the registry, cannot be overridden", k)
		}
		custom[k] = v
	}
	return custom, nil
}

// apply stages the request: the image target, then its extra targets.
func (a *trustAddRequest) apply(repo *publish.Repo) ([]publish.Target, error) {
	t, err := repo.AddTargetFile(a.role, a.target, bytes.NewReader(a.manifest), a.custom)
	if err != nil {
		return nil, err
	}
	if t.SHA256 != a.desc.SHA256() || t.Length != a.desc.Size {
		return nil, fmt.Errorf("add %s: stored %s/%d bytes, resolved %s/%d", a.target, t.SHA256, t.Length, a.desc.Digest, a.desc.Size)
	}
	out := []publish.Target{t}
	for _, e := range a.extra {
		et, err := repo.AddTargetFile("", e.name, bytes.NewReader(e.data), e.custom)
		if err != nil {
			return out, err
		}
		out = append(out, et)
	}
	return out, nil
}

// finishTrustEdit prints the summary of a staging command, publishing first
// when asked to.
func finishTrustEdit(ctx context.Context, repo *publish.Repo, now bool, summary string, stdout, stderr io.Writer) error {
	if !now {
		fmt.Fprintf(stdout, "%s; staged, run \"trustproxy trust publish\" to publish\n", summary)
		return nil
	}
	res, err := repo.Publish(ctx)
	if err != nil {
		return fmt.Errorf("%s, but publishing failed (the change stays staged): %w", summary, err)
	}
	fmt.Fprintf(stdout, "%s; published (%s)\n", summary, describeTrustResult(res))
	printTrustWarnings(stderr, res)
	return nil
}

func trustRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newTrustFlags("remove", "remove <target name>... --repo DIR [flags]", `
Stage the removal of targets (e.g. docker.io/library/alpine:3.20). Once
published, trustproxy stops serving them within its refresh interval.`, stderr, trustKeysPublish)
	role := f.fs.String("role", "", "remove only from this `ROLE` (default: every role that lists the name)")
	now := f.fs.Bool("publish", false, "publish right away (needs --keys)")
	names, err := f.parse(args, false)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return f.usageError("no target names given")
	}
	if *now && f.keys == "" {
		return f.usageError("--publish needs --keys DIR")
	}
	repo, err := f.open()
	if err != nil {
		return err
	}
	roles := map[string]bool{}
	for _, n := range names {
		from, err := repo.RemoveTarget(*role, n)
		if err != nil {
			return err
		}
		for _, r := range from {
			roles[r] = true
		}
	}
	summary := fmt.Sprintf("removed %d target(s) from role(s) %s", len(names), strings.Join(sortedTrustKeys(roles), ", "))
	return finishTrustEdit(ctx, repo, *now, summary, stdout, stderr)
}

func trustDelegate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newTrustFlags("delegate", "delegate --role NAME --paths PATTERN --repo DIR --keys DIR [flags]", `
Stage a delegation: role NAME may sign the target names matching the
patterns (shell globs per "/"-separated segment: docker.io/acme/* covers
docker.io/acme/app:1.0 but not docker.io/acme/team/app:1.0). Its keys are
generated in <keys>/<NAME>/ unless --pubkey names existing ones.`, stderr, trustKeysRequired)
	role := f.fs.String("role", "", "name of the new `ROLE` (required)")
	var paths, pubkeys trustStrings
	f.fs.Var(&paths, "paths", "target name `PATTERN`s, comma-separated or repeated (required)")
	parent := f.fs.String("parent", "targets", "delegating `ROLE`")
	threshold := f.fs.Int("threshold", 1, "number of the role's keys that must sign")
	numKeys := f.fs.Int("num-keys", 0, "number of keys to generate (default: the threshold)")
	keyType := f.fs.String("key-type", "", "key `TYPE` of generated keys (default: the repository's)")
	f.fs.Var(&pubkeys, "pubkey", "delegate to this PEM public key `FILE` instead of generating keys (repeatable; place the private key in <keys>/<ROLE>/ to publish)")
	terminating := f.fs.Bool("terminating", false, "clients stop searching at this role for names it covers")
	if err := f.parseNoArgs(args, true); err != nil {
		return err
	}
	if *role == "" || len(paths) == 0 {
		return f.usageError("--role and --paths are required")
	}
	opts := publish.DelegateOptions{Parent: *parent, Paths: paths, Threshold: *threshold, Keys: *numKeys,
		KeyType: *keyType, Terminating: *terminating}
	for _, p := range pubkeys {
		pk, err := publish.ReadPublicKey(p)
		if err != nil {
			return err
		}
		opts.PublicKeys = append(opts.PublicKeys, pk)
	}
	repo, err := f.open()
	if err != nil {
		return err
	}
	ids, err := repo.Delegate(*role, opts)
	if err != nil {
		return err
	}
	kt := *keyType
	if kt == "" {
		kt = repo.KeyType()
	}
	keys := fmt.Sprintf("%d-of-%d %s keys in %s", *threshold, len(ids), kt, repo.KeysDir(*role))
	if len(pubkeys) > 0 {
		keys = fmt.Sprintf("%d-of-%d given keys", *threshold, len(ids))
	}
	fmt.Fprintf(stdout, "delegated %s from %s to role %s (%s); staged, run \"trustproxy trust publish\" to publish\n",
		strings.Join(paths, ", "), *parent, *role, keys)
	return nil
}

func trustPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newTrustFlags("publish", "publish --repo DIR --keys DIR", `
Sign and publish: a new version of every targets role that changed (or is
past half its lifetime, or was signed by rotated keys), then a new snapshot
and timestamp. Run it at least as often as the snapshot expires.`, stderr, trustKeysRequired)
	if err := f.parseNoArgs(args, true); err != nil {
		return err
	}
	repo, err := f.open()
	if err != nil {
		return err
	}
	res, err := repo.Publish(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %s: %s\n", f.repo, describeTrustResult(res))
	printTrustWarnings(stderr, res)
	return nil
}

func trustTimestamp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newTrustFlags("timestamp", "timestamp --repo DIR --keys DIR", `
Re-sign only the timestamp for the current snapshot, needing only the
timestamp key. Run it from cron more often than the timestamp expires.`, stderr, trustKeysRequired)
	if err := f.parseNoArgs(args, true); err != nil {
		return err
	}
	repo, err := f.open()
	if err != nil {
		return err
	}
	res, err := repo.Timestamp(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-signed timestamp v%d for snapshot v%d, expires %s\n", res.Timestamp, res.Snapshot, res.Expires.Format(time.RFC3339))
	printTrustWarnings(stderr, res)
	return nil
}

func trustRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newTrustFlags("rotate", "rotate --role ROLE --repo DIR --keys DIR [flags]", `
Replace the keys of a top-level role (root, targets, snapshot, timestamp)
with new ones: publishes root version N+1 signed by the old root keys (and
the new ones for root) and re-signs what the new keys must sign. Old key
files move to <keys>/<ROLE>/retired. Also renews root's expiry.`, stderr, trustKeysRequired)
	role := f.fs.String("role", "", "top-level `ROLE` to rotate (required)")
	threshold := f.fs.Int("threshold", 0, "number of new keys that must sign (default: unchanged)")
	numKeys := f.fs.Int("num-keys", 0, "number of new keys (default: the threshold)")
	keyType := f.fs.String("key-type", "", "key `TYPE` of the new keys (default: the repository's)")
	pos, err := f.parse(args, true)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *role == "" {
		return f.usageError("--role is required and no arguments are expected")
	}
	repo, err := f.open()
	if err != nil {
		return err
	}
	res, err := repo.RotateKeys(ctx, *role, publish.RotateOptions{Keys: *numKeys, Threshold: *threshold, KeyType: *keyType})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rotated %s keys (new keys in %s): %s\n", *role, repo.KeysDir(*role), describeTrustResult(res))
	printTrustWarnings(stderr, res)
	return nil
}

func trustList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newTrustFlags("list", "list --repo DIR", `
Print the targets of the working copy (published plus staged changes): role,
target name, digest, length and media type.`, stderr, "")
	if err := f.parseNoArgs(args, false); err != nil {
		return err
	}
	repo, err := f.open()
	if err != nil {
		return err
	}
	targets := repo.Targets()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if len(targets) > 0 {
		fmt.Fprintln(tw, "ROLE\tTARGET\tDIGEST\tLENGTH\tMEDIA TYPE")
	}
	roles := map[string]bool{}
	for _, t := range targets {
		roles[t.Role] = true
		fmt.Fprintf(tw, "%s\t%s\tsha256:%s\t%d\t%s\n", t.Role, t.Name, t.SHA256, t.Length, trustMediaType(t))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	pending, err := repo.Pending()
	if err != nil {
		return err
	}
	state := "all published"
	if len(pending) > 0 {
		state = "unpublished changes in " + strings.Join(pending, ", ")
	}
	fmt.Fprintf(stdout, "%d target(s) in %d role(s) (%d roles in all); %s\n", len(targets), len(roles), len(repo.RoleNames()), state)
	return nil
}

func trustMediaType(t publish.Target) string {
	var c struct {
		MediaType string `json:"mediaType"`
	}
	if len(t.Custom) == 0 || json.Unmarshal(t.Custom, &c) != nil || c.MediaType == "" {
		return "-"
	}
	return c.MediaType
}

func describeTrustResult(res *publish.Result) string {
	var parts []string
	if res.Root > 1 {
		parts = append(parts, fmt.Sprintf("root v%d", res.Root))
	}
	for _, role := range sortedTrustKeys(res.Roles) {
		parts = append(parts, fmt.Sprintf("%s v%d", role, res.Roles[role]))
	}
	parts = append(parts, fmt.Sprintf("snapshot v%d", res.Snapshot),
		fmt.Sprintf("timestamp v%d (expires %s)", res.Timestamp, res.Expires.Format(time.RFC3339)))
	return strings.Join(parts, ", ")
}

func printTrustWarnings(w io.Writer, res *publish.Result) {
	for _, m := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", m)
	}
}

func sortedTrustKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
