package intoto

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

const (
	keyTypeED25519 = "ed25519"
	keyTypeECDSA   = "ecdsa"
	keyTypeRSA     = "rsa"

	minRSABits = 2048
)

// ParsePublicKey reads one public key in either form in-toto tools publish:
//
//   - PEM "PUBLIC KEY" (PKIX): ed25519, ECDSA or RSA. Defaults follow
//     in-toto-golang: RSA uses rsassa-pss-sha256, ECDSA ecdsa-sha2-nistpNNN.
//   - securesystemslib JSON, the NAME.pub that Python's in-toto-keygen writes
//     for ed25519 and ECDSA keys.
//
// The key id is always computed from the key (sha256 of the canonical JSON of
// keytype, scheme, keyid_hash_algorithms and keyval.public), never taken from
// the input. Python ECDSA keys must be given as their JSON .pub: Python keeps
// the trailing newline of the PEM inside keyval.public, Go trims it, so the
// same key read from PEM gets a different key id and matches no signature.
// Private keys are refused.
func ParsePublicKey(b []byte) (in_toto.Key, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return in_toto.Key{}, errors.New("parse public key: empty input")
	}
	if len(trimmed) > maxKeyBytes {
		return in_toto.Key{}, fmt.Errorf("parse public key: %d bytes is more than the %d allowed", len(trimmed), maxKeyBytes)
	}
	var (
		k   in_toto.Key
		err error
	)
	if trimmed[0] == '{' {
		k, err = parseSSLibKey(trimmed)
	} else {
		k, err = parsePEMKey(trimmed)
	}
	if err != nil {
		return in_toto.Key{}, fmt.Errorf("parse public key: %w", err)
	}
	if _, err := keyFingerprint(k); err != nil {
		return in_toto.Key{}, fmt.Errorf("parse public key %s: %w", short(k.KeyID), err)
	}
	return k, nil
}

func parsePEMKey(b []byte) (in_toto.Key, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return in_toto.Key{}, errors.New("neither PEM nor securesystemslib JSON")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return in_toto.Key{}, errors.New("more than one PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return in_toto.Key{}, fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\" (never give a private key)", block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return in_toto.Key{}, fmt.Errorf("PEM public key: %w", err)
	}
	var k in_toto.Key
	if ec, ok := pub.(*ecdsa.PublicKey); ok {
		// in-toto-golang's default scheme is nistp256 whatever the curve,
		// which its own validation then rejects for P-384 and P-521.
		scheme := fmt.Sprintf("ecdsa-sha2-nistp%d", ec.Curve.Params().BitSize)
		err = k.LoadKeyReader(bytes.NewReader(b), scheme, []string{"sha256", "sha512"})
	} else {
		err = k.LoadKeyReaderDefaults(bytes.NewReader(b))
	}
	if err != nil {
		return in_toto.Key{}, err
	}
	return k, nil
}

// sslibKey is the securesystemslib key file format. Unknown fields are
// rejected so that a private key file ("keyval.private") is never mistaken for
// a public one.
type sslibKey struct {
	KeyID               string   `json:"keyid,omitempty"`
	KeyType             string   `json:"keytype"`
	Scheme              string   `json:"scheme"`
	KeyIDHashAlgorithms []string `json:"keyid_hash_algorithms"`
	KeyVal              struct {
		Public  string `json:"public"`
		Private string `json:"private,omitempty"`
	} `json:"keyval"`
}

func parseSSLibKey(b []byte) (in_toto.Key, error) {
	var sk sslibKey
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sk); err != nil {
		return in_toto.Key{}, fmt.Errorf("securesystemslib JSON key: %w", err)
	}
	if dec.More() {
		return in_toto.Key{}, errors.New("securesystemslib JSON key: trailing data")
	}
	if sk.KeyVal.Private != "" {
		return in_toto.Key{}, errors.New("securesystemslib JSON key holds a private key: give the .pub file")
	}
	if sk.KeyVal.Public == "" || sk.KeyType == "" || sk.Scheme == "" {
		return in_toto.Key{}, errors.New("securesystemslib JSON key: keytype, scheme and keyval.public are required")
	}
	k := in_toto.Key{
		KeyType:             sk.KeyType,
		Scheme:              sk.Scheme,
		KeyIDHashAlgorithms: sk.KeyIDHashAlgorithms,
		KeyVal:              in_toto.KeyVal{Public: sk.KeyVal.Public},
	}
	id, err := computeKeyID(k)
	if err != nil {
		return in_toto.Key{}, err
	}
	if sk.KeyID != "" && sk.KeyID != id {
		return in_toto.Key{}, fmt.Errorf("key file says keyid %s but the key hashes to %s", short(sk.KeyID), short(id))
	}
	k.KeyID = id
	return k, nil
}

// computeKeyID is securesystemslib's key id, the same computation as
// in_toto.Key.generateKeyID and Python's securesystemslib.keys.
func computeKeyID(k in_toto.Key) (string, error) {
	canonical, err := cjson.EncodeCanonical(map[string]any{
		"keytype":               k.KeyType,
		"scheme":                k.Scheme,
		"keyid_hash_algorithms": k.KeyIDHashAlgorithms,
		"keyval":                map[string]string{"public": k.KeyVal.Public},
	})
	if err != nil {
		return "", fmt.Errorf("canonicalize key: %w", err)
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:]), nil
}

// keyFingerprint checks that a public key is one the verifiers can use without
// panicking (in-toto-golang type-asserts and ed25519.Verify panics on a short
// key) and returns an identity of the key material. Thresholds count distinct
// key material, not distinct key ids: a layout that lists one key under two
// ids must not let one functionary satisfy a threshold of two.
func keyFingerprint(k in_toto.Key) (string, error) {
	if k.KeyVal.Private != "" {
		return "", errors.New("is a private key")
	}
	switch k.KeyType {
	case keyTypeED25519:
		if k.Scheme != "ed25519" {
			return "", fmt.Errorf("ed25519 key with scheme %q", k.Scheme)
		}
		raw, err := hex.DecodeString(k.KeyVal.Public)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return "", errors.New("ed25519 public key is not 32 hex-encoded bytes")
		}
		return fingerprint(keyTypeED25519, raw), nil
	case keyTypeECDSA:
		pub, der, err := parsePKIX(k.KeyVal.Public)
		if err != nil {
			return "", err
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return "", fmt.Errorf("keytype ecdsa but the PEM holds a %T", pub)
		}
		want := fmt.Sprintf("ecdsa-sha2-nistp%d", ec.Curve.Params().BitSize)
		if k.Scheme != want {
			return "", fmt.Errorf("ECDSA key on curve %s with scheme %q, want %q", ec.Curve.Params().Name, k.Scheme, want)
		}
		return fingerprint(keyTypeECDSA, der), nil
	case keyTypeRSA:
		pub, der, err := parsePKIX(k.KeyVal.Public)
		if err != nil {
			return "", err
		}
		r, ok := pub.(*rsa.PublicKey)
		if !ok {
			return "", fmt.Errorf("keytype rsa but the PEM holds a %T", pub)
		}
		if k.Scheme != "rsassa-pss-sha256" {
			return "", fmt.Errorf("RSA key with scheme %q: only rsassa-pss-sha256 is supported", k.Scheme)
		}
		if r.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits, want at least %d", r.N.BitLen(), minRSABits)
		}
		return fingerprint(keyTypeRSA, der), nil
	default:
		return "", fmt.Errorf("unsupported keytype %q (ed25519, ecdsa and rsa are supported; GPG is not)", k.KeyType)
	}
}

func parsePKIX(s string) (any, []byte, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, nil, errors.New("public key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("public key: %w", err)
	}
	return pub, block.Bytes, nil
}

func fingerprint(kind string, material []byte) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(material)
	return hex.EncodeToString(h.Sum(nil))
}

// short is the 8-character key id prefix in-toto uses in link file names;
// enough to name a key in a denial message.
func short(keyID string) string {
	if len(keyID) > 8 {
		return keyID[:8]
	}
	if keyID == "" {
		return "(no keyid)"
	}
	return keyID
}

// shortList renders key ids for messages.
func shortList(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = short(id)
	}
	return "[" + strings.Join(out, " ") + "]"
}
