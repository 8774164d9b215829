package publish

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// A second lock on the same file waits until the first is released, also
// when taken through another open file (as another process would).
func TestLockFileExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := lockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	var released atomic.Bool
	got := make(chan bool)
	go func() {
		u2, err := lockFile(context.Background(), path)
		if err != nil {
			t.Error(err)
			got <- false
			return
		}
		got <- released.Load()
		u2()
	}()
	select {
	case <-got:
		t.Fatal("second lock taken while the first was held")
	default:
	}
	released.Store(true)
	unlock()
	if ok := <-got; !ok {
		t.Fatal("second lock taken before the first was released")
	}
}
