package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
)

// The hasher must see every chunk, in order, however the downloader cuts
// them, and stop must return even when chunks are still queued.
func TestHashPipe(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 3*copyBufferSize/16+7)
	want := sha256.Sum256(data)
	tests := []struct {
		name  string
		chunk int
	}{
		{"one byte", 1},
		{"odd", 4093},
		{"full buffers", copyBufferSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p := newHashPipe(sha256.New())
			rest := data
			if tt.chunk == 1 {
				rest = data[:100000]
			}
			whole := rest
			for len(rest) > 0 {
				buf, err := p.buffer(ctx)
				if err != nil {
					t.Fatal(err)
				}
				k := copy(buf[:min(tt.chunk, len(buf))], rest)
				rest = rest[k:]
				p.hash(buf[:k])
			}
			got := p.sum().Sum(nil)
			exp := want[:]
			if tt.chunk == 1 {
				s := sha256.Sum256(whole)
				exp = s[:]
			}
			if !bytes.Equal(got, exp) {
				t.Fatalf("hash %x, want %x", got, exp)
			}
			if p.made > hashPipeBuffers {
				t.Fatalf("%d buffers made, limit %d", p.made, hashPipeBuffers)
			}
		})
	}

	t.Run("stop with chunks queued", func(t *testing.T) {
		p := newHashPipe(sha256.New())
		for range hashPipeBuffers {
			buf, err := p.buffer(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			p.hash(buf)
		}
		p.stop()
		p.stop() // idempotent, as the deferred stop after sum
	})
}
