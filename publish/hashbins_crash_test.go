package publish

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// A process that dies while staging a bulk add into hash bins leaves the
// repository consistent: before the journal is written nothing is staged;
// after, the next edit (which takes the lock) stages the whole add, even
// when some of the renames had already happened.
func TestHashBinsCrashMidAdd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		crash  func(r *Repo, bins []string) error
		staged bool
	}{
		{"new copies written, no journal", func(r *Repo, bins []string) error {
			if err := r.writeBinJournal(bins); err != nil {
				return err
			}
			return os.Remove(filepath.Join(r.binsDir(), binJournalName))
		}, false},
		{"journal written", func(r *Repo, bins []string) error {
			return r.writeBinJournal(bins)
		}, true},
		{"journal written, half renamed", func(r *Repo, bins []string) error {
			if err := r.writeBinJournal(bins); err != nil {
				return err
			}
			for _, b := range bins[:len(bins)/2] {
				if err := os.Rename(filepath.Join(r.binsDir(), b+binNewSuffix), filepath.Join(r.binsDir(), b+binFileSuffix)); err != nil {
					return err
				}
			}
			return nil
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			base := t.TempDir()
			repoDir, keysDir := filepath.Join(base, "repo"), filepath.Join(base, "keys")
			if _, err := Init(ctx, repoDir, keysDir, InitOptions{HashBins: 16}); err != nil {
				t.Fatal(err)
			}
			r, err := Open(repoDir, keysDir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			touched := map[string]bool{}
			var names []string
			for i := range 40 {
				name := fmt.Sprintf("example.com/crash/app:%d", i)
				tg, err := r.addTarget("", name, 1, fmt.Sprintf("%064x", i), nil)
				if err != nil {
					t.Fatal(err)
				}
				touched[tg.Role] = true
				names = append(names, name)
			}
			var bins []string
			for b := range touched {
				bins = append(bins, b)
			}
			if len(bins) < 4 {
				t.Fatalf("40 targets in only %d bins", len(bins))
			}
			if err := tc.crash(r, bins); err != nil {
				t.Fatal(err)
			}

			after, err := Open(repoDir, keysDir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := after.AddTarget("", "example.com/after:1", 1, fmt.Sprintf("%064x", 999), nil); err != nil {
				t.Fatalf("edit after the crash: %v", err)
			}
			for _, n := range names {
				if _, ok := after.Lookup(n); ok != tc.staged {
					t.Fatalf("%s staged = %v, want %v", n, ok, tc.staged)
				}
			}
			if _, ok := after.Lookup("example.com/after:1"); !ok {
				t.Fatal("the edit after the crash was lost")
			}
			if _, err := os.Stat(filepath.Join(after.binsDir(), binJournalName)); !os.IsNotExist(err) {
				t.Fatalf("journal left behind: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(after.binsDir(), "*"+binNewSuffix)); len(left) != 0 {
				t.Fatalf("unstaged copies left behind: %v", left)
			}
			res, err := after.Publish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if tc.staged {
				want = len(touched)
				if !touched[after.BinFor("example.com/after:1")] {
					want++
				}
			}
			if len(res.Bins) != want {
				t.Fatalf("publish signed %d bins, want %d", len(res.Bins), want)
			}
		})
	}
}
