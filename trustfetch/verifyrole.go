package trustfetch

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// delegator is what a targets role is verified against: the keys and
// threshold its delegating role (or the root, for the top-level role)
// assigns to it.
type delegator struct {
	keys      map[string]*metadata.Key
	keyIDs    []string
	threshold int
}

// delegatorFromRoot is the root's delegation of the top-level targets role.
func delegatorFromRoot(root *metadata.Metadata[metadata.RootType]) (delegator, error) {
	r, ok := root.Signed.Roles[metadata.TARGETS]
	if !ok {
		return delegator{}, &metadata.ErrValue{Msg: "no delegation found for targets"}
	}
	return delegator{keys: root.Signed.Keys, keyIDs: r.KeyIDs, threshold: r.Threshold}, nil
}

// delegatorFor is the delegation of role by a targets role's delegations,
// as go-tuf's VerifyDelegate reads it.
func delegatorFor(d *metadata.Delegations, role string) (delegator, error) {
	if d == nil {
		return delegator{}, &metadata.ErrValue{Msg: "no delegations found"}
	}
	del := delegator{keys: d.Keys}
	switch {
	case d.Roles != nil:
		found := false
		for i := range d.Roles {
			if d.Roles[i].Name == role {
				del.keyIDs, del.threshold, found = d.Roles[i].KeyIDs, d.Roles[i].Threshold, true
				break
			}
		}
		if !found {
			return delegator{}, &metadata.ErrValue{Msg: fmt.Sprintf("no delegation found for %s", role)}
		}
	case d.SuccinctRoles != nil:
		if !d.SuccinctRoles.IsDelegatedRole(role) {
			return delegator{}, &metadata.ErrValue{Msg: fmt.Sprintf("no delegation found for %s", role)}
		}
		del.keyIDs, del.threshold = d.SuccinctRoles.KeyIDs, d.SuccinctRoles.Threshold
	}
	return del, nil
}

// verifiers caches signature verifiers by key for one refresh: the
// thousands of bins of a hash-bin delegation share their keys.
// Safe for concurrent use.
type verifiers struct {
	mu sync.Mutex
	m  map[string]cachedVerifier
	// docs recycles parse buffers between roles.
	docs sync.Pool
}

type cachedVerifier struct {
	v           signature.Verifier
	fingerprint string
	err         error
}

// get loads a verifier for key the way go-tuf's VerifyDelegate does.
func (vs *verifiers) get(keyID string, key *metadata.Key) cachedVerifier {
	id := keyID + "\x00" + key.Type + "\x00" + key.Scheme + "\x00" + key.Value.PublicKey
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if c, ok := vs.m[id]; ok {
		return c
	}
	if vs.m == nil {
		vs.m = map[string]cachedVerifier{}
	}
	c := loadVerifier(key)
	vs.m[id] = c
	return c
}

func loadVerifier(key *metadata.Key) cachedVerifier {
	pub, err := key.ToPublicKey()
	if err != nil {
		return cachedVerifier{err: err}
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return cachedVerifier{err: err}
	}
	fp := sha256.Sum256(der)
	hash := crypto.Hash(0)
	if key.Type != metadata.KeyTypeEd25519 {
		switch key.Scheme {
		case metadata.KeySchemeECDSA_SHA2_P384:
			hash = crypto.SHA384
		default:
			hash = crypto.SHA256
		}
	}
	var v signature.Verifier
	if key.Type == metadata.KeyTypeRSASSA_PSS_SHA256 {
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return cachedVerifier{err: &metadata.ErrType{Msg: "failed to convert public key to RSA PSS key"}}
		}
		v, err = signature.LoadRSAPSSVerifier(rk, hash, &rsa.PSSOptions{Hash: crypto.SHA256})
	} else {
		v, err = signature.LoadVerifier(pub, hash)
	}
	return cachedVerifier{v: v, fingerprint: hex.EncodeToString(fp[:]), err: err}
}

// verifyThreshold is go-tuf's VerifyDelegate over an already canonical
// payload: distinct public keys, not key IDs, count towards the threshold.
func (vs *verifiers) verifyThreshold(role string, del delegator, sigs []metadata.Signature, payload []byte) error {
	if len(del.keyIDs) == 0 {
		return &metadata.ErrValue{Msg: fmt.Sprintf("no delegation found for %s", role)}
	}
	if del.threshold < 1 {
		return &metadata.ErrValue{Msg: fmt.Sprintf("insufficient threshold (%d) configured for %s", del.threshold, role)}
	}
	signed := map[string]bool{}
	for _, id := range del.keyIDs {
		key, ok := del.keys[id]
		if !ok {
			return &metadata.ErrValue{Msg: fmt.Sprintf("key with ID %s not found in %s keyids", id, role)}
		}
		c := vs.get(id, key)
		if c.err != nil {
			return c.err
		}
		var sig []byte
		for i := range sigs {
			if sigs[i].KeyID == id {
				sig = sigs[i].Signature
			}
		}
		if sig != nil && c.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil {
			signed[c.fingerprint] = true
		}
	}
	if len(signed) < del.threshold {
		return &metadata.ErrUnsignedMetadata{Msg: fmt.Sprintf("Verifying %s failed, not enough signatures, got %d, want %d", role, len(signed), del.threshold)}
	}
	return nil
}

// verifyTargetsRole verifies the bytes of a targets role exactly as the TUF
// client workflow requires (length and hashes from the snapshot, then the
// delegator's signature threshold over the canonical JSON of "signed", the
// type, the version the snapshot names, the expiry) and returns its content
// as a segment. The role is parsed once; nothing of go-tuf's object graph is
// built for its targets.
func (vs *verifiers) verifyTargetsRole(b []byte, role string, meta *metadata.MetaFiles, del delegator, now time.Time) (*segment, error) {
	if err := meta.VerifyLengthHashes(b); err != nil {
		return nil, err
	}
	malformed := func(err error) error {
		return &metadata.ErrRepository{Msg: fmt.Sprintf("%s.json is not valid metadata: %v", role, err)}
	}
	d, _ := vs.docs.Get().(*jdoc)
	if d == nil {
		d = &jdoc{}
	}
	// Nothing of d is referenced by the segment: names, custom values and
	// delegations are copied out.
	defer func() {
		d.src = nil
		vs.docs.Put(d)
	}()
	if err := d.parse(b); err != nil {
		return nil, malformed(err)
	}
	if d.nodes[0].kind != jObject {
		return nil, malformed(fmt.Errorf("not a JSON object"))
	}
	signedN, sigsN := d.field(0, "signed"), d.field(0, "signatures")
	if signedN < 0 || d.nodes[signedN].kind != jObject || sigsN < 0 || d.nodes[sigsN].kind != jArray {
		return nil, malformed(fmt.Errorf(`"signed" must be an object and "signatures" an array`))
	}
	// Duplicate keys anywhere are refused ("signed" is checked as it is
	// canonicalised below).
	seen := map[string]bool{}
	for k := d.nodes[0].first; k >= 0; k = d.nodes[d.nodes[k].next].next {
		key := d.str(k)
		if seen[key] {
			return nil, malformed(fmt.Errorf("duplicate key %q", key))
		}
		seen[key] = true
		if v := d.nodes[k].next; v != signedN {
			if _, err := d.canonical(v, nil); err != nil {
				return nil, malformed(err)
			}
		}
	}
	typeN := d.field(signedN, "_type")
	if typeN < 0 || d.nodes[typeN].kind != jString {
		return nil, malformed(fmt.Errorf("no _type found in signed"))
	}
	if t := d.str(typeN); t != metadata.TARGETS {
		return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("expected %s, got %s", metadata.TARGETS, t)}
	}
	var sigs []metadata.Signature
	if err := json.Unmarshal(d.raw(sigsN), &sigs); err != nil {
		return nil, malformed(fmt.Errorf("signatures: %w", err))
	}
	payload, err := d.canonical(signedN, d.payload[:0])
	if err != nil {
		return nil, malformed(err)
	}
	d.payload = payload
	if err := vs.verifyThreshold(role, del, sigs, payload); err != nil {
		return nil, err
	}

	versionN, expiresN, targetsN := d.field(signedN, "version"), d.field(signedN, "expires"), d.field(signedN, "targets")
	if versionN < 0 || d.nodes[versionN].kind != jNumber {
		return nil, malformed(fmt.Errorf("version is missing or not a number"))
	}
	if v := d.int(versionN); v != meta.Version {
		return nil, &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("expected %s version %d, got %d", role, meta.Version, v)}
	}
	if expiresN < 0 || d.nodes[expiresN].kind != jString {
		return nil, malformed(fmt.Errorf("expires is missing or not a string"))
	}
	expires, err := time.Parse(time.RFC3339, d.str(expiresN))
	if err != nil {
		return nil, malformed(fmt.Errorf("expires: %w", err))
	}
	if now.After(expires) {
		return nil, &metadata.ErrExpiredMetadata{Msg: fmt.Sprintf("new %s is expired", role)}
	}
	if targetsN < 0 || d.nodes[targetsN].kind != jObject {
		return nil, malformed(fmt.Errorf("targets is missing or not an object"))
	}
	n := 0
	for k := d.nodes[targetsN].first; k >= 0; k = d.nodes[d.nodes[k].next].next {
		n++
	}
	sb := newSegmentBuilder(role, n)
	sb.seg.version, sb.seg.expires = meta.Version, expires
	for k := d.nodes[targetsN].first; k >= 0; k = d.nodes[d.nodes[k].next].next {
		name, v := d.strBytes(k), d.nodes[k].next
		if err := addTarget(d, sb, name, v); err != nil {
			return nil, malformed(fmt.Errorf("target %q: %w", name, err))
		}
	}
	seg := sb.done()
	if dn := d.field(signedN, "delegations"); dn >= 0 && d.nodes[dn].kind != jNull {
		var deleg metadata.Delegations
		if err := json.Unmarshal(d.raw(dn), &deleg); err != nil {
			return nil, malformed(fmt.Errorf("delegations: %w", err))
		}
		c, err := d.canonical(dn, nil)
		if err != nil {
			return nil, malformed(err)
		}
		seg.deleg, seg.delegHash = &deleg, sha256.Sum256(c)
	}
	return seg, nil
}

// addTarget reads one target entry: length, hashes (every value hex, as
// go-tuf requires), custom kept as its canonical JSON.
func addTarget(d *jdoc, sb *segmentBuilder, name []byte, v int32) error {
	if d.nodes[v].kind != jObject {
		return fmt.Errorf("not an object")
	}
	ln, hn, cn := d.field(v, "length"), d.field(v, "hashes"), d.field(v, "custom")
	if ln < 0 || d.nodes[ln].kind != jNumber {
		return fmt.Errorf("length is missing or not a number")
	}
	if hn < 0 || d.nodes[hn].kind != jObject {
		return fmt.Errorf("hashes is missing or not an object")
	}
	var sum []byte
	var sha [sha256.Size]byte
	for k := d.nodes[hn].first; k >= 0; k = d.nodes[d.nodes[k].next].next {
		hv := d.nodes[k].next
		if d.nodes[hv].kind != jString {
			return fmt.Errorf("hash %s is not a string", d.str(k))
		}
		h := d.strBytes(hv)
		if string(d.strBytes(k)) == "sha256" && len(h) == 2*sha256.Size {
			if _, err := hex.Decode(sha[:], h); err != nil {
				return fmt.Errorf("hash sha256: %w", err)
			}
			sum = sha[:]
			continue
		}
		v, err := hex.DecodeString(string(h))
		if err != nil {
			return fmt.Errorf("hash %s: %w", d.str(k), err)
		}
		if string(d.strBytes(k)) == "sha256" {
			sum = v
		}
	}
	var customJSON []byte
	if cn >= 0 && d.nodes[cn].kind != jNull {
		var err error
		if sb.scratch, err = d.canonical(cn, sb.scratch[:0]); err != nil {
			return err
		}
		customJSON = sb.scratch
	}
	sb.add(name, d.int(ln), sum, customJSON)
	return nil
}
