package intoto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// errReadOnly is what the write half of in_toto.Metadata returns for
// metadata this package loaded: trustproxy verifies, it never signs or writes.
var errReadOnly = errors.New("in-toto metadata loaded for verification is read-only")

// parseMetadata reads a classic metablock or a DSSE envelope from bytes, the
// way in_toto.LoadMetadata reads a file, but stricter: unknown fields and
// trailing data are errors everywhere, not only inside the payload.
//
// Signatures are checked over what was received: for classic metadata the
// canonical JSON of the "signed" object (see metablock), for DSSE the
// payload bytes. The payload is decoded with DisallowUnknownFields, as
// LoadMetadata does, and must read back as what was signed (checkRepresented).
func parseMetadata(b []byte) (in_toto.Metadata, error) {
	var top map[string]json.RawMessage
	if err := decodeStrict(b, &top); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, ok := top["payloadType"]; ok {
		return parseEnvelope(b)
	}
	for k := range top {
		if k != "signed" && k != "signatures" {
			return nil, fmt.Errorf("unexpected top-level field %q (want \"signed\" and \"signatures\", or a DSSE envelope)", k)
		}
	}
	if isNull(top["signed"]) || isNull(top["signatures"]) {
		return nil, errors.New("classic in-toto metadata needs \"signed\" and \"signatures\"")
	}
	mb := &metablock{}
	if err := decodeStrict(top["signatures"], &mb.Signatures); err != nil {
		return nil, fmt.Errorf("signatures: %w", err)
	}
	payload, err := parsePayload(top["signed"])
	if err != nil {
		return nil, err
	}
	mb.Signed = payload
	// in-toto signs canonical JSON, which has no floating point numbers.
	if mb.canonical, err = cjson.EncodeCanonical(json.RawMessage(top["signed"])); err != nil {
		return nil, fmt.Errorf("signed payload has no canonical JSON form: %w", err)
	}
	return mb, nil
}

func parseEnvelope(b []byte) (in_toto.Metadata, error) {
	env := &dsse.Envelope{}
	if err := decodeStrict(b, env); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	if env.PayloadType != in_toto.PayloadType {
		return nil, fmt.Errorf("DSSE payloadType %q, want %q", env.PayloadType, in_toto.PayloadType)
	}
	if len(env.Signatures) == 0 {
		return nil, errors.New("DSSE envelope has no signatures")
	}
	body, err := env.DecodeB64Payload()
	if err != nil {
		return nil, fmt.Errorf("DSSE payload: %w", err)
	}
	payload, err := parsePayload(body)
	if err != nil {
		return nil, err
	}
	return &envelope{env: env, payload: payload}, nil
}

// requiredFields are the payload fields in_toto.LoadMetadata insists on. With
// one missing, the canonical JSON Go re-encodes would differ from what was
// signed; saying so beats a bare "signature mismatch".
var requiredFields = map[string][]string{
	"link":   {"_type", "name", "materials", "products", "byproducts", "command", "environment"},
	"layout": {"_type", "steps", "inspect", "keys", "expires", "readme"},
}

func parsePayload(b []byte) (any, error) {
	var fields map[string]json.RawMessage
	if err := decodeStrict(b, &fields); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var typ string
	if raw, ok := fields["_type"]; ok {
		if err := json.Unmarshal(raw, &typ); err != nil {
			return nil, fmt.Errorf("payload _type: %w", err)
		}
	}
	required, ok := requiredFields[typ]
	if !ok {
		return nil, fmt.Errorf("payload _type %q: want \"layout\" or \"link\"", typ)
	}
	for _, f := range required {
		if _, ok := fields[f]; !ok {
			return nil, fmt.Errorf("%s: required field %q missing", typ, f)
		}
	}
	var payload any
	if typ == "link" {
		var link in_toto.Link
		if err := decodeStrict(b, &link); err != nil {
			return nil, fmt.Errorf("decode link: %w", err)
		}
		payload = link
	} else {
		var layout in_toto.Layout
		if err := decodeStrict(b, &layout); err != nil {
			return nil, fmt.Errorf("decode layout: %w", err)
		}
		payload = layout
	}
	if err := checkRepresented(b, payload); err != nil {
		return nil, fmt.Errorf("%s: %w", typ, err)
	}
	return payload, nil
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// envelope is in_toto.Metadata over a DSSE envelope held in memory.
// in_toto.Envelope cannot be built from bytes (its fields are unexported and
// LoadMetadata only reads files), and its SetPayload emits raw newlines
// inside PEM strings; verification only needs PAE over the received payload
// bytes, which dsse.EnvelopeVerifier does.
type envelope struct {
	env     *dsse.Envelope
	payload any
}

var _ in_toto.Metadata = (*envelope)(nil)

func (e *envelope) GetPayload() any { return e.payload }

func (e *envelope) VerifySignature(key in_toto.Key) error {
	v, err := keyVerifier(key)
	if err != nil {
		return err
	}
	ev, err := dsse.NewEnvelopeVerifier(v)
	if err != nil {
		return err
	}
	// The interface has no context and verification is pure CPU work.
	_, err = ev.Verify(context.Background(), e.env)
	return err
}

func (e *envelope) Sigs() []in_toto.Signature {
	out := make([]in_toto.Signature, 0, len(e.env.Signatures))
	for _, s := range e.env.Signatures {
		out = append(out, in_toto.Signature{KeyID: s.KeyID, Sig: s.Sig})
	}
	return out
}

func (e *envelope) GetSignatureForKeyID(keyID string) (in_toto.Signature, error) {
	for _, s := range e.env.Signatures {
		if s.KeyID == keyID {
			return in_toto.Signature{KeyID: s.KeyID, Sig: s.Sig}, nil
		}
	}
	return in_toto.Signature{}, fmt.Errorf("no signature found for key '%s'", keyID)
}

func (e *envelope) Sign(in_toto.Key) error { return errReadOnly }

func (e *envelope) Dump(string) error { return errReadOnly }
