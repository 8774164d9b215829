package intoto

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVerifierCaches(t *testing.T) {
	f := newFixture(t)
	in := f.input(signClassic(t, f.layout(), f.k.owner), f.goodLinks(t, signClassic))
	v := NewVerifier(8)

	first, cached, err := v.Verify(context.Background(), in)
	if err != nil || cached {
		t.Fatalf("first Verify: cached=%v err=%v", cached, err)
	}
	second, cached, err := v.Verify(context.Background(), in)
	if err != nil || !cached {
		t.Fatalf("second Verify: cached=%v err=%v", cached, err)
	}
	if first.LayoutSHA256 != second.LayoutSHA256 || !slices.Equal(first.Functionaries, second.Functionaries) {
		t.Fatalf("cached result differs: %+v vs %+v", first, second)
	}

	// Callers own what they get back.
	second.Steps[0] = "mutated"
	third, _, _ := v.Verify(context.Background(), in)
	if third.Steps[0] != "build" {
		t.Fatalf("a caller's change leaked into the cache: %v", third.Steps)
	}

	// Link order is not part of the identity.
	reordered := in
	reordered.Links = slices.Clone(in.Links)
	slices.Reverse(reordered.Links)
	if _, cached, err := v.Verify(context.Background(), reordered); err != nil || !cached {
		t.Fatalf("reordered links: cached=%v err=%v", cached, err)
	}

	// Another subject is another entry, and here a denial.
	otherSubject := in
	otherSubject.SubjectSHA256 = sha256Hex([]byte("other"))
	if _, cached, err := v.Verify(context.Background(), otherSubject); err == nil || cached {
		t.Fatalf("other subject: cached=%v err=%v", cached, err)
	}

	// Past the layout's expiry the entry no longer holds.
	late := in
	late.Now = first.ValidUntil
	if _, cached, err := v.Verify(context.Background(), late); err == nil || cached || !strings.Contains(err.Error(), "layout expired") {
		t.Fatalf("after expiry: cached=%v err=%v", cached, err)
	}
	if v.Len() != 0 {
		t.Fatalf("expired entry kept: Len = %d", v.Len())
	}
}

func TestVerifierDoesNotCacheDenials(t *testing.T) {
	f := newFixture(t)
	in := f.input(signClassic(t, f.layout(), f.k.rogue), f.goodLinks(t, signClassic))
	v := NewVerifier(8)
	for i := range 2 {
		if _, cached, err := v.Verify(context.Background(), in); err == nil || cached {
			t.Fatalf("call %d: cached=%v err=%v", i, cached, err)
		}
	}
	if v.Len() != 0 {
		t.Fatalf("Len = %d after denials", v.Len())
	}
}

func TestVerifierBounded(t *testing.T) {
	f := newFixture(t)
	layout := signClassic(t, f.layout(), f.k.owner)
	v := NewVerifier(2)
	var inputs []Input
	for i := range 3 {
		g := *f
		g.manifest = []byte(`{"n":` + string(rune('0'+i)) + `}`)
		inputs = append(inputs, g.input(layout, g.goodLinks(t, signClassic)))
	}
	for _, in := range inputs {
		if _, _, err := v.Verify(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	if v.Len() != 2 {
		t.Fatalf("Len = %d, want 2", v.Len())
	}
	// The least recently used (the first) was evicted; the last two remain.
	if _, cached, _ := v.Verify(context.Background(), inputs[2]); !cached {
		t.Error("most recent entry was evicted")
	}
	if _, cached, _ := v.Verify(context.Background(), inputs[0]); cached {
		t.Error("oldest entry was not evicted")
	}
}

// Concurrent callers for one input share one verification.
func TestVerifierConcurrent(t *testing.T) {
	f := newFixture(t)
	in := f.input(signClassic(t, f.layout(), f.k.ownerRSA), f.goodLinks(t, signClassic), f.k.ownerRSA)
	v := NewVerifier(8)
	const n = 16
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fresh int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, cached, err := v.Verify(context.Background(), in)
			if err != nil {
				t.Error(err)
				return
			}
			if !cached {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if fresh != 1 {
		t.Fatalf("%d of %d concurrent calls verified; want exactly 1", fresh, n)
	}
}

func TestVerifierWaiterHonoursContext(t *testing.T) {
	f := newFixture(t)
	in := f.input(signClassic(t, f.layout(), f.k.owner), f.goodLinks(t, signClassic))
	v := NewVerifier(8)
	// Pretend a verification of this input is running and never ends.
	v.inflight[cacheKey(in)] = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := v.Verify(ctx, in); err != context.DeadlineExceeded {
		t.Fatalf("Verify while another call holds the input: %v", err)
	}
}
