// Signing the hash bins a Publish re-signs: thousands of them when a
// repository is first filled, one per added target after that.

package publish

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// signedBins are bins signed by prepare, not yet written.
type signedBins struct {
	files    []pendingFile
	versions map[string]int64
	expires  map[string]time.Time
	meta     map[string]*metadata.MetaFiles
}

// signBins signs a new version of each due bin with the bin key set. Each
// bin is encoded canonically once (binjson.go; its targets not even that
// when this Repo just staged it), signed by every key from those bytes and
// published as those bytes (go-tuf's Metadata.Sign would encode it once per
// key, VerifyDelegate once more and ToBytes again). The first bin is
// verified against the staged targets role the way a client will, which
// checks the key set; the bins after it are signed by the same keys.
func (r *Repo) signBins(ctx context.Context, due []string, pub *published, now time.Time) (*signedBins, error) {
	out := &signedBins{versions: map[string]int64{}, expires: map[string]time.Time{}, meta: map[string]*metadata.MetaFiles{}}
	if len(due) == 0 {
		return out, nil
	}
	want := r.roleKeysOf(due[0])
	signers, err := r.keys.signers(want)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(signers))
	for i, s := range signers {
		pk, err := s.PublicKey()
		if err != nil {
			return nil, err
		}
		if ids[i], err = keyID(pk); err != nil {
			return nil, err
		}
	}
	mds, err := r.loadBins(ctx, due)
	if err != nil {
		return nil, err
	}
	expires := r.expires(due[0], now)
	bodies := make([][]byte, len(due))
	for i, name := range due {
		bodies[i] = r.bins.bodies[name] // as staged, if this Repo staged it
	}
	signed := make([]*metadata.Metadata[metadata.TargetsType], len(due))
	var enc binEncoder
	files := make([]pendingFile, len(due))
	err = parallel(ctx, len(due), func(i int) error {
		md := *mds[i] // shares the targets map, which nothing changes meanwhile
		md.Signed.Version = 1
		if pub.snapshot != nil {
			if mf := pub.snapshot.Signed.Meta[due[i]+".json"]; mf != nil {
				md.Signed.Version = mf.Version + 1
			}
		}
		md.Signed.Expires = expires
		body, fast, err := bodies[i], bodies[i] != nil, error(nil)
		if !fast {
			body, fast, err = enc.targetsBody(&md.Signed)
		}
		var file *binFileBuf
		var payload []byte
		switch {
		case err != nil:
		case fast:
			file = newBinFile(&md.Signed, body)
			payload = file.signed()
		default:
			payload, err = cjson.EncodeCanonical(md.Signed)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", due[i], err)
		}
		md.Signatures = make([]metadata.Signature, 0, len(signers))
		for k, s := range signers {
			sig, err := signPayload(s, payload)
			if err != nil {
				return fmt.Errorf("sign %s: %w", due[i], err)
			}
			md.Signatures = append(md.Signatures, metadata.Signature{KeyID: ids[k], Signature: sig})
		}
		var b []byte
		if fast {
			b = file.finish(md.Signatures)
		} else if b, err = md.ToBytes(false); err != nil {
			return fmt.Errorf("%s: %w", due[i], err)
		}
		signed[i] = &md
		files[i] = pendingFile{fmt.Sprintf("%d.%s.json", md.Signed.Version, due[i]), b}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := r.verifyRole(due[0], signed[0]); err != nil {
		return nil, fmt.Errorf("%s: signed metadata does not verify: %w", due[0], err)
	}
	for i, name := range due {
		out.versions[name] = signed[i].Signed.Version
		out.expires[name] = expires
		out.meta[name+".json"] = metaFile(signed[i].Signed.Version, files[i].data)
	}
	out.files = files
	return out, nil
}

// signPayload signs payload with s. An ed25519 signer signs the bytes as
// they are: its SignMessage would first copy a bin of a quarter of a
// megabyte out of a reader.
func signPayload(s signature.Signer, payload []byte) ([]byte, error) {
	if cs, ok := s.(crypto.Signer); ok {
		if _, ok := cs.Public().(ed25519.PublicKey); ok {
			return cs.Sign(nil, payload, crypto.Hash(0))
		}
	}
	return s.SignMessage(bytes.NewReader(payload))
}
