package publish

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Key types a repository can be created with.
const (
	KeyEd25519 = "ed25519"
	KeyECDSA   = "ecdsa" // NIST P-256, ecdsa-sha2-nistp256
	KeyRSA     = "rsa"   // 3072 bits, rsassa-pss-sha256
)

// rsaBits is the size of generated RSA keys (NIST: 3072 bits for use beyond 2030).
const rsaBits = 3072

// retiredDir is where key rotation moves keys that no longer sign anything,
// inside the role's key directory so the loader never considers them.
const retiredDir = "retired"

func checkKeyType(keyType string) error {
	switch keyType {
	case KeyEd25519, KeyECDSA, KeyRSA:
		return nil
	}
	return fmt.Errorf("unknown key type %q (want %s, %s or %s)", keyType, KeyEd25519, KeyECDSA, KeyRSA)
}

func generateKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case KeyEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case KeyECDSA:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyRSA:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	}
	return nil, checkKeyType(keyType)
}

// loadSigner wraps a private key in the signer TUF expects for its type.
// RSA must sign with PSS: sigstore's default for RSA is PKCS#1 v1.5, whose
// signatures go-tuf (and the TUF spec's rsassa-pss-sha256) reject. The salt
// is the hash length, which every PSS verifier (Go's auto, python-tuf's)
// accepts.
func loadSigner(priv crypto.PrivateKey) (signature.Signer, error) {
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		return signature.LoadSigner(k, crypto.Hash(0))
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ecdsa key on curve %s: TUF ecdsa-sha2-nistp256 needs P-256", k.Curve.Params().Name)
		}
		return signature.LoadSigner(k, crypto.SHA256)
	case *rsa.PrivateKey:
		return signature.LoadSignerWithOpts(k,
			options.WithHash(crypto.SHA256),
			options.WithRSAPSS(&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}))
	}
	return nil, fmt.Errorf("unsupported private key type %T", priv)
}

// keyring is the directory of private keys, one subdirectory per role:
// <dir>/<role>/<keyid>.key (PEM PKCS#8, mode 0600) and <keyid>.pub (PEM
// PKIX). The file name is a convenience: keys are matched to roles by their
// public key, so a renamed file still works and a wrong one is reported.
type keyring struct{ dir string }

func (k keyring) roleDir(role string) string { return filepath.Join(k.dir, role) }

func (k keyring) check() error {
	if k.dir == "" {
		return errors.New("no keys directory given")
	}
	return nil
}

// create generates a key for role and writes it to the keyring.
func (k keyring) create(role, keyType string) (*metadata.Key, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	priv, err := generateKey(keyType)
	if err != nil {
		return nil, fmt.Errorf("generate %s key for %s: %w", keyType, role, err)
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("tuf key for %s: %w", role, err)
	}
	id, err := key.ID()
	if err != nil {
		return nil, err
	}
	privPEM, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		return nil, fmt.Errorf("encode private key for %s: %w", role, err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("encode public key for %s: %w", role, err)
	}
	dir := k.roleDir(role)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	if err := writeNewFile(filepath.Join(dir, id+".key"), privPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write private key for %s: %w", role, err)
	}
	if err := writeNewFile(filepath.Join(dir, id+".pub"), pubPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write public key for %s: %w", role, err)
	}
	return key, nil
}

// roleKeys is what a delegator says about a role: its keys and threshold.
type roleKeys struct {
	role      string
	keyIDs    []string
	keys      map[string]*metadata.Key
	threshold int
}

// signers loads the private keys of want from the keyring: every key file
// whose public key is one of the role's keys. It fails, naming the files it
// looked at, when fewer than the threshold are found.
func (k keyring) signers(want roleKeys) ([]signature.Signer, error) {
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("sign %s: %w", want.role, err)
	}
	dir := k.roleDir(want.role)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sign %s: read key directory: %w", want.role, err)
	}
	type pub interface{ Equal(crypto.PublicKey) bool }
	wanted := map[string]crypto.PublicKey{}
	for _, id := range want.keyIDs {
		key, ok := want.keys[id]
		if !ok {
			return nil, fmt.Errorf("sign %s: key %s is listed for the role but missing from the delegator's keys", want.role, short(id))
		}
		pk, err := key.ToPublicKey()
		if err != nil {
			return nil, fmt.Errorf("sign %s: key %s: %w", want.role, short(id), err)
		}
		wanted[id] = pk
	}
	var out []signature.Signer
	var notes []string
	used := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".key") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		priv, err := readPrivateKey(path)
		if err != nil {
			return nil, fmt.Errorf("sign %s: %w", want.role, err)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("sign %s: %s: unsupported private key type %T", want.role, path, priv)
		}
		matched := ""
		for id, pk := range wanted {
			if p, ok := signer.Public().(pub); ok && p.Equal(pk) {
				matched = id
				break
			}
		}
		if matched == "" {
			notes = append(notes, fmt.Sprintf("%s is not one of the role's keys", path))
			continue
		}
		if used[matched] {
			continue
		}
		s, err := loadSigner(priv)
		if err != nil {
			return nil, fmt.Errorf("sign %s: %s: %w", want.role, path, err)
		}
		used[matched] = true
		out = append(out, s)
	}
	if len(out) < want.threshold {
		ids := make([]string, 0, len(want.keyIDs))
		for _, id := range want.keyIDs {
			ids = append(ids, short(id))
		}
		sort.Strings(ids)
		msg := fmt.Sprintf("sign %s: need %d signature(s) from keys [%s] but found %d matching private key file(s) in %s",
			want.role, want.threshold, strings.Join(ids, " "), len(out), dir)
		if len(notes) > 0 {
			msg += " (" + strings.Join(notes, "; ") + ")"
		}
		return nil, errors.New(msg)
	}
	return out, nil
}

// readPrivateKey reads a PEM private key and refuses files others can read,
// as ssh does: a signing key readable by the group is already half leaked.
func readPrivateKey(path string) (crypto.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("private key %s is accessible by others (mode %04o); run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(b, cryptoutils.SkipPassword)
	if err != nil {
		return nil, fmt.Errorf("parse private key %s: %w", path, err)
	}
	return priv, nil
}

// retire moves the key files of role whose key is not in keep out of the
// way. Files are identified by content, not by name.
func (k keyring) retire(role string, keep map[string]bool) error {
	dir := k.roleDir(role)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("retire %s keys: %w", role, err)
	}
	for _, e := range entries {
		name := e.Name()
		var pk crypto.PublicKey
		switch {
		case e.IsDir():
			continue
		case strings.HasSuffix(name, ".key"):
			priv, err := readPrivateKey(filepath.Join(dir, name))
			if err != nil {
				return fmt.Errorf("retire %s keys: %w", role, err)
			}
			if s, ok := priv.(crypto.Signer); ok {
				pk = s.Public()
			}
		case strings.HasSuffix(name, ".pub"):
			if pk, err = ReadPublicKey(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("retire %s keys: %w", role, err)
			}
		default:
			continue
		}
		if id, err := keyID(pk); err == nil && keep[id] {
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, retiredDir), 0o700); err != nil {
			return fmt.Errorf("retire %s keys: %w", role, err)
		}
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, retiredDir, name)); err != nil {
			return fmt.Errorf("retire %s keys: %w", role, err)
		}
	}
	return nil
}

func keyID(pk crypto.PublicKey) (string, error) {
	key, err := metadata.KeyFromPublicKey(pk)
	if err != nil {
		return "", err
	}
	return key.ID()
}

// ReadPublicKey reads a PEM (PKIX) public key file, e.g. to delegate to a
// key whose private half is held elsewhere.
func ReadPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	pk, err := cryptoutils.UnmarshalPEMToPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse public key %s: %w", path, err)
	}
	return pk, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
