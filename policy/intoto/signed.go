package intoto

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/signerverifier"
)

// metablock is classic in-toto metadata whose signatures are checked over
// the canonical JSON of the "signed" object as received.
// in_toto.Metablock.VerifySignature re-encodes its Go struct instead, and the
// struct drops what it does not model: securesystemslib writes an RSA public
// key as "keyval": {"public": ..., "private": ""}, Go's KeyVal omits the
// empty private, so every layout listing an RSA key made by Python's
// in-toto-keygen would fail to verify.
type metablock struct {
	in_toto.Metablock
	canonical []byte // canonical JSON of "signed", exactly what was signed
}

var _ in_toto.Metadata = (*metablock)(nil)

func (m *metablock) VerifySignature(key in_toto.Key) error {
	sig, err := m.GetSignatureForKeyID(key.KeyID)
	if err != nil {
		return err
	}
	v, err := keyVerifier(key)
	if err != nil {
		return err
	}
	raw, err := hex.DecodeString(sig.Sig)
	if err != nil {
		return fmt.Errorf("signature by %s is not hex: %w", short(key.KeyID), err)
	}
	// The interface has no context and verification is pure CPU work.
	return v.Verify(context.Background(), m.canonical, raw)
}

func (m *metablock) Sign(in_toto.Key) error { return errReadOnly }

func (m *metablock) Dump(string) error { return errReadOnly }

// keyVerifier is the securesystemslib verifier for an in-toto key, as
// in-toto-golang picks it, after the checks that keep the verifiers from
// panicking.
func keyVerifier(key in_toto.Key) (dsse.Verifier, error) {
	if _, err := keyFingerprint(key); err != nil {
		return nil, fmt.Errorf("key %s: %w", short(key.KeyID), err)
	}
	sk := &signerverifier.SSLibKey{
		KeyID:               key.KeyID,
		KeyType:             key.KeyType,
		Scheme:              key.Scheme,
		KeyIDHashAlgorithms: key.KeyIDHashAlgorithms,
		KeyVal:              signerverifier.KeyVal{Public: key.KeyVal.Public, Certificate: key.KeyVal.Certificate},
	}
	switch key.KeyType {
	case keyTypeED25519:
		return signerverifier.NewED25519SignerVerifierFromSSLibKey(sk)
	case keyTypeECDSA:
		return signerverifier.NewECDSASignerVerifierFromSSLibKey(sk)
	case keyTypeRSA:
		return signerverifier.NewRSAPSSSignerVerifierFromSSLibKey(sk)
	}
	return nil, fmt.Errorf("unsupported keytype %q", key.KeyType)
}

// checkRepresented makes sure the decoded payload says what the received
// bytes say, now that signatures are checked over the bytes and not over
// the struct: a field the struct cannot hold (a case variant such as
// "Steps", which encoding/json folds onto "steps") would otherwise be signed
// but read differently. Fields that are absent on one side and empty on the
// other mean the same to both readers and are allowed.
func checkRepresented(raw []byte, decoded any) error {
	re, err := json.Marshal(decoded)
	if err != nil {
		return err
	}
	a, err := decodeGeneric(raw)
	if err != nil {
		return err
	}
	b, err := decodeGeneric(re)
	if err != nil {
		return err
	}
	if where := firstDifference(a, b, ""); where != "" {
		return fmt.Errorf("field %s is signed but not understood as written (unknown, duplicate or differently "+
			"cased field): trustproxy refuses metadata it would read differently from its signer", where)
	}
	return nil
}

func decodeGeneric(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// firstDifference returns the JSON path of the first difference between two
// generic JSON values, or "".
func firstDifference(a, b any, at string) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return orRoot(at)
		}
		keys := make([]string, 0, len(x)+len(y))
		for k := range x {
			keys = append(keys, k)
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			va, okA := x[k]
			vb, okB := y[k]
			switch {
			case okA && okB:
				if d := firstDifference(va, vb, at+"."+k); d != "" {
					return d
				}
			case okA && !isEmpty(va), okB && !isEmpty(vb):
				return orRoot(at + "." + k)
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return orRoot(at)
		}
		for i := range x {
			if d := firstDifference(x[i], y[i], fmt.Sprintf("%s[%d]", at, i)); d != "" {
				return d
			}
		}
		return ""
	default:
		if a != b {
			return orRoot(at)
		}
		return ""
	}
}

func orRoot(at string) string {
	if at == "" {
		return "(top level)"
	}
	return strings.TrimPrefix(at, ".")
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case json.Number:
		return x == "0"
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
