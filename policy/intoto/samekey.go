package intoto

import "fmt"

// SameKey reports whether two public keys (PEM or securesystemslib JSON)
// hold the same key material. Key IDs are not compared: one key read from
// PEM and from Python's JSON may get different IDs.
func SameKey(a, b []byte) (bool, error) {
	fa, err := fingerprintOf(a)
	if err != nil {
		return false, err
	}
	fb, err := fingerprintOf(b)
	if err != nil {
		return false, err
	}
	return fa == fb, nil
}

func fingerprintOf(b []byte) (string, error) {
	k, err := ParsePublicKey(b)
	if err != nil {
		return "", err
	}
	f, err := keyFingerprint(k)
	if err != nil {
		return "", fmt.Errorf("public key %s: %w", short(k.KeyID), err)
	}
	return f, nil
}
