package cache

import (
	"crypto/rand"
	_ "crypto/sha256" // registers the hashes go-digest needs to validate and verify digests
	_ "crypto/sha512"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Storage layout inside the driver. All objects live under these prefixes:
//
//	/blobs/<alg>/<hex[0:2]>/<hex>/data           blob bytes
//	/manifests/<alg>/<hex[0:2]>/<hex>/mediatype  the manifest's media type (written first)
//	/manifests/<alg>/<hex[0:2]>/<hex>/data       manifest bytes (written last)
//	/staging/<random>                            objects still being written
//
// Every object is written to /staging with driver.Writer, Commit()ed, and
// then Move()d to its final path (an atomic rename on the filesystem driver,
// a server-side copy on S3). The data object is the commit point: an object
// exists for the cache if and only if its data object exists, and a data
// object only ever appears there complete and verified. A manifest's
// mediatype is moved into place before its data, so a visible manifest always
// has its media type; eviction deletes data first for the same reason.
// Anything a crash leaves behind (staging objects, a mediatype without data)
// is invisible to readers and swept by New.
const (
	blobsRoot     = "/blobs"
	manifestsRoot = "/manifests"
	stagingRoot   = "/staging"

	dataName      = "data"
	mediaTypeName = "mediatype"
)

type kind uint8

const (
	kindBlob kind = iota
	kindManifest
)

func (k kind) String() string {
	if k == kindManifest {
		return "manifest"
	}
	return "blob"
}

func (k kind) root() string {
	if k == kindManifest {
		return manifestsRoot
	}
	return blobsRoot
}

// key names one cached object.
type key struct {
	kind kind
	dgst digest.Digest
}

func (k key) String() string { return k.kind.String() + " " + k.dgst.String() }

func (k key) dir() string {
	enc := k.dgst.Encoded()
	return fmt.Sprintf("%s/%s/%s/%s", k.kind.root(), k.dgst.Algorithm(), enc[:2], enc)
}

func (k key) dataPath() string { return k.dir() + "/" + dataName }

func (k key) mediaTypePath() string { return k.dir() + "/" + mediaTypeName }

// stagingPath returns a fresh, unguessable staging object path so that
// concurrent writers (in this process or in replicas sharing the storage)
// never write to the same staging object.
func stagingPath() (string, error) {
	n, err := randomName()
	if err != nil {
		return "", fmt.Errorf("staging name: %w", err)
	}
	return stagingRoot + "/" + n, nil
}

// randomName is 32 random hex digits.
func randomName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// parseObjectPath splits a driver path under /blobs or /manifests into the
// object's key and the file name inside its directory.
func parseObjectPath(p string) (key, string, bool) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(parts) != 5 {
		return key{}, "", false
	}
	var k key
	switch "/" + parts[0] {
	case blobsRoot:
		k.kind = kindBlob
	case manifestsRoot:
		k.kind = kindManifest
	default:
		return key{}, "", false
	}
	k.dgst = digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[3])
	if k.dgst.Validate() != nil || parts[2] != parts[3][:2] {
		return key{}, "", false
	}
	return k, parts[4], true
}

func validateDigest(what string, dgst digest.Digest) error {
	if err := dgst.Validate(); err != nil {
		return fmt.Errorf("%s %q: invalid digest: %w", what, dgst, err)
	}
	return nil
}
