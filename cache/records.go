package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// Records are small documents that other layers keep on the same storage as
// the content, so that a restarted process and every replica sharing the
// storage read what one of them wrote (the proxy's approvals). A record is
// named by a set, a key (any string; hashed into the path) and an id, and
// is written whole or not at all. Records are not part of MaxSize.
//
//	/records/<set>/<sha256(key)[0:2]>/<sha256(key)>/<id>
const (
	recordsRoot = "/records"
	// MaxRecordSize bounds one record; Records skips larger objects.
	MaxRecordSize = 4 << 20
	// maxRecordsPerKey bounds what one Records call reads.
	maxRecordsPerKey = 64
)

var recordName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// Record is one stored record.
type Record struct {
	ID   string
	Body []byte
}

func recordDir(set, key string) (string, error) {
	if !recordName.MatchString(set) {
		return "", fmt.Errorf("record set %q: want [a-z0-9-], at most 64 characters", set)
	}
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	return path.Join(recordsRoot, set, h[:2], h), nil
}

// PutRecord stores body as record id of key in set, replacing a record of
// the same id. Readers see the old or the new body, never a part.
func (c *Cache) PutRecord(ctx context.Context, set, key, id string, body []byte) error {
	dir, err := recordDir(set, key)
	if err != nil {
		return fmt.Errorf("put record: %w", err)
	}
	if !recordName.MatchString(id) {
		return fmt.Errorf("put record %s/%s: id %q: want [a-z0-9-], at most 64 characters", set, key, id)
	}
	if len(body) > MaxRecordSize {
		return fmt.Errorf("put record %s/%s/%s: %d bytes, limit %d: %w", set, key, id, len(body), MaxRecordSize, ErrTooLarge)
	}
	final := dir + "/" + id
	if c.d.Name() == "s3aws" || c.d.Name() == "s3" {
		// One PutObject is atomic on S3; staging and Move would cost a
		// copy and a delete more.
		err = c.d.PutContent(ctx, final, body)
	} else {
		err = c.stageAndMove(ctx, final, strings.NewReader(string(body)), nil)
	}
	if err != nil {
		return fmt.Errorf("put record %s/%s/%s: %w", set, key, id, err)
	}
	return nil
}

// Records returns the records of key in set (at most 64; none is an empty
// list, not an error). A record that vanishes or is unreadable while being
// listed is skipped.
func (c *Cache) Records(ctx context.Context, set, key string) ([]Record, error) {
	dir, err := recordDir(set, key)
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	paths, err := c.d.List(ctx, dir)
	if isPathNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("records %s/%s: list %s: %w", set, key, dir, err)
	}
	var out []Record
	for _, p := range paths {
		if len(out) == maxRecordsPerKey {
			break
		}
		id := path.Base(p)
		if !recordName.MatchString(id) {
			continue
		}
		b, err := c.readSmall(ctx, p, MaxRecordSize)
		if err != nil {
			if ctx.Err() != nil {
				return out, fmt.Errorf("records %s/%s: %w", set, key, err)
			}
			c.log.Sugar().Warnw("skipping unreadable record", "path", p, "error", err)
			continue
		}
		out = append(out, Record{ID: id, Body: b})
	}
	return out, nil
}

// stageAndMove writes src to a fresh staging object, commits it, waits for
// before (if any), and moves it to final, so final only ever appears
// complete. The staging object is deleted on failure.
func (c *Cache) stageAndMove(ctx context.Context, final string, src io.Reader, before func(context.Context) error) (err error) {
	staging, err := stagingPath()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if derr := c.d.Delete(context.WithoutCancel(ctx), staging); derr != nil && !isPathNotFound(derr) {
				c.log.Sugar().Warnw("staging object left behind for the next sweep", "path", staging, "error", derr)
			}
		}
	}()
	buf := make([]byte, copyBufferSize)
	if c.d.Name() == "inmemory" {
		err = c.writeAppending(ctx, staging, src, buf)
	} else {
		err = c.writeStaging(ctx, staging, src, false, buf)
	}
	if err != nil {
		return err
	}
	if before != nil {
		if err := before(ctx); err != nil {
			return err
		}
	}
	if err := c.d.Move(ctx, staging, final); err != nil {
		return fmt.Errorf("move %s to %s: %w", staging, final, err)
	}
	return nil
}
