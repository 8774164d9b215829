package cache

import (
	"context"
	"fmt"
	"hash"
)

// hashPipeBuffers is how many copy buffers a download cycles through: one
// being filled from upstream while the others wait for or are in the hasher.
const hashPipeBuffers = 4

// hashPipe hashes a download's chunks on its own goroutine, so the
// downloader reads upstream and writes the spool while the previous chunks
// are hashed: sha256 is the largest per-byte cost and would otherwise sit
// on the downloader's critical path. Chunks are hashed in the order given.
// Memory stays bounded: at most hashPipeBuffers buffers per download.
type hashPipe struct {
	h     hash.Hash
	work  chan []byte
	free  chan []byte
	done  chan struct{}
	made  int
	ended bool
}

func newHashPipe(h hash.Hash) *hashPipe {
	p := &hashPipe{
		h:    h,
		work: make(chan []byte, hashPipeBuffers),
		free: make(chan []byte, hashPipeBuffers),
		done: make(chan struct{}),
	}
	go p.run()
	return p
}

func (p *hashPipe) run() {
	defer close(p.done)
	for b := range p.work {
		p.h.Write(b)
		p.free <- b[:cap(b)]
	}
}

// buffer returns a buffer to read the next chunk into: a recycled one, a
// new one while fewer than hashPipeBuffers exist, or the next one the hasher
// gives back.
func (p *hashPipe) buffer(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.free:
		return b, nil
	default:
	}
	if p.made < hashPipeBuffers {
		p.made++
		return make([]byte, copyBufferSize), nil
	}
	select {
	case b := <-p.free:
		return b, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the hasher: %w", context.Cause(ctx))
	}
}

// hash queues b (from buffer) for hashing; b must not be touched afterwards.
func (p *hashPipe) hash(b []byte) { p.work <- b }

// recycle returns an unused buffer.
func (p *hashPipe) recycle(b []byte) { p.free <- b[:cap(b)] }

// sum waits until every queued chunk is hashed and returns the hash.
func (p *hashPipe) sum() hash.Hash {
	p.stop()
	return p.h
}

// stop ends the hasher goroutine and waits for it (it finishes the few
// chunks still queued), so no goroutine outlives the download.
func (p *hashPipe) stop() {
	if !p.ended {
		p.ended = true
		close(p.work)
	}
	<-p.done
}
