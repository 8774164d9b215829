// What is published: comparing the working copy with the published roles
// (Pending) and reading the published metadata back.

package publish

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// sameContent reports whether two versions of a role list the same targets
// and delegations, ignoring version, expiry and signatures.
func sameContent(a, b *metadata.Metadata[metadata.TargetsType]) (bool, error) {
	x, y := a.Signed, b.Signed
	x.Version, x.Expires = y.Version, y.Expires
	cx, err := cjson.EncodeCanonical(x)
	if err != nil {
		return false, err
	}
	cy, err := cjson.EncodeCanonical(y)
	if err != nil {
		return false, err
	}
	return string(cx) == string(cy), nil
}

// Pending lists the roles whose working copy differs from what is published.
func (r *Repo) Pending() ([]string, error) {
	pub, err := r.loadPublished()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, role := range r.roleOrder() {
		if pub.snapshot == nil {
			out = append(out, role)
			continue
		}
		mf, ok := pub.snapshot.Signed.Meta[role+".json"]
		if !ok {
			out = append(out, role)
			continue
		}
		prev, err := r.readRole(role, mf.Version)
		if err != nil {
			return nil, err
		}
		same, err := sameContent(r.roles[role], prev)
		if err != nil {
			return nil, err
		}
		if !same {
			out = append(out, role)
		}
	}
	bins, err := r.binsDue(pub, r.now(), false)
	if err != nil {
		return nil, err
	}
	return append(out, bins...), nil
}

func (r *Repo) loadPublished() (*published, error) {
	p := &published{}
	b, err := os.ReadFile(r.metadataPath("timestamp.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	if p.timestamp, err = (&metadata.Metadata[metadata.TimestampType]{}).FromBytes(b); err != nil {
		return nil, fmt.Errorf("parse timestamp.json: %w", err)
	}
	sm, ok := p.timestamp.Signed.Meta["snapshot.json"]
	if !ok {
		return nil, errors.New("timestamp.json names no snapshot")
	}
	name := fmt.Sprintf("%d.snapshot.json", sm.Version)
	if b, err = os.ReadFile(r.metadataPath(name)); err != nil {
		return nil, err
	}
	if p.snapshot, err = (&metadata.Metadata[metadata.SnapshotType]{}).FromBytes(b); err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	return p, nil
}

func (r *Repo) readRole(role string, version int64) (*metadata.Metadata[metadata.TargetsType], error) {
	name := fmt.Sprintf("%d.%s.json", version, role)
	b, err := os.ReadFile(r.metadataPath(name))
	if err != nil {
		return nil, err
	}
	md, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	return md, nil
}

func metaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	mf := metadata.MetaFile(version)
	mf.Length = int64(len(data))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	return mf
}
