package cache

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func TestRecords(t *testing.T) {
	for _, dc := range driverCases {
		t.Run(dc.name, func(t *testing.T) {
			ctx := context.Background()
			d, _ := dc.new(t)
			c, _ := newTestCache(t, d, Options{})
			if recs, err := c.Records(ctx, "approvals", "none"); err != nil || len(recs) != 0 {
				t.Fatalf("missing key: %v %v", recs, err)
			}
			for _, body := range []string{"first", "second"} { // the same id replaces
				if err := c.PutRecord(ctx, "approvals", "up/repo@sha256:x", "g1", []byte(body)); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.PutRecord(ctx, "approvals", "up/repo@sha256:x", "g2", []byte("other")); err != nil {
				t.Fatal(err)
			}
			recs, err := c.Records(ctx, "approvals", "up/repo@sha256:x")
			if err != nil || len(recs) != 2 {
				t.Fatalf("records: %v %v", recs, err)
			}
			got := map[string]string{}
			for _, r := range recs {
				got[r.ID] = string(r.Body)
			}
			if got["g1"] != "second" || got["g2"] != "other" {
				t.Fatalf("records: %v", got)
			}
			// Records are not cache objects: a restart keeps them and
			// does not count them.
			c2, _ := newTestCache(t, d, Options{})
			if recs, err := c2.Records(ctx, "approvals", "up/repo@sha256:x"); err != nil || len(recs) != 2 || c2.Size() != 0 {
				t.Fatalf("after reopen: %d records, %v, size %d", len(recs), err, c2.Size())
			}
		})
	}
}

func TestRecordsRefuseBadInput(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, inmemory.New(), Options{})
	for _, tc := range []struct {
		name, set, id string
		body          []byte
		want          string
	}{
		{"set with slash", "a/b", "x", nil, "record set"},
		{"empty id", "approvals", "", nil, "id"},
		{"id with dots", "approvals", "../x", nil, "id"},
		{"too large", "approvals", "x", bytes.Repeat([]byte("a"), MaxRecordSize+1), "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.PutRecord(ctx, tc.set, "k", tc.id, tc.body)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if err := c.PutRecord(ctx, "approvals", "k", "x", bytes.Repeat([]byte("a"), MaxRecordSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
}
