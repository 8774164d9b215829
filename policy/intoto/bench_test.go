package intoto

import (
	"context"
	"testing"
)

// The cost of one in-toto decision: the two-step fixture (ed25519 layout key;
// links by ed25519, ECDSA P-256 and RSA-PSS 2048 functionaries).

func BenchmarkVerifyCold(b *testing.B) {
	for _, form := range []struct {
		name string
		sign func(testing.TB, any, ...testKey) []byte
	}{{"classic", signClassic}, {"dsse", signDSSE}} {
		b.Run(form.name, func(b *testing.B) {
			f := newFixture(b)
			in := f.input(form.sign(b, f.layout(), f.k.owner), f.goodLinks(b, form.sign))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Verify(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifierCached(b *testing.B) {
	f := newFixture(b)
	in := f.input(signClassic(b, f.layout(), f.k.owner), f.goodLinks(b, signClassic))
	v := NewVerifier(16)
	ctx := context.Background()
	if _, _, err := v.Verify(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, cached, err := v.Verify(ctx, in); err != nil || !cached {
			b.Fatalf("cached=%v err=%v", cached, err)
		}
	}
}
