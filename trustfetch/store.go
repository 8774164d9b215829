package trustfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// store reads the files of one repository tree (metadata or targets).
// rel is a URL-escaped, slash-separated path relative to the tree.
// A missing file is reported as *metadata.ErrDownloadHTTP with status
// 404, which go-tuf needs to end root rotation.
type store interface {
	get(ctx context.Context, rel string, limit int64) ([]byte, error)
	where(rel string) string
}

// tooLargeError says a file exceeded the bound it was read with.
type tooLargeError struct {
	where string
	limit int64
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %d bytes", e.where, e.limit)
}

func newStore(l location, client *http.Client) store {
	if l.url != nil {
		base := l.url.String()
		if !strings.HasSuffix(base, "/") {
			base += "/"
		}
		return &httpStore{base: base, client: client}
	}
	return &dirStore{dir: l.dir}
}

type httpStore struct {
	base   string // ends with "/"
	client *http.Client
}

func (s *httpStore) where(rel string) string { return s.base + rel }

func (s *httpStore) get(ctx context.Context, rel string, limit int64) ([]byte, error) {
	u := s.base + rel
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	res, err := s.client.Do(req)
	if err != nil {
		return nil, err // *url.Error already names the method and URL
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096)) // let the connection be reused
		return nil, &metadata.ErrDownloadHTTP{StatusCode: res.StatusCode, URL: u}
	}
	if res.ContentLength > limit {
		return nil, &tooLargeError{where: u, limit: limit}
	}
	return readBounded(res.Body, u, limit, res.ContentLength)
}

// readBounded reads at most limit bytes and fails if there is more.
// sizeHint (the announced size, or <= 0) only presizes the buffer.
func readBounded(r io.Reader, where string, limit, sizeHint int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, min(max(sizeHint, 0), limit)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", where, err)
	}
	if int64(buf.Len()) > limit {
		return nil, &tooLargeError{where: where, limit: limit}
	}
	return buf.Bytes(), nil
}

// dirStore reads a copied repository. Both layouts of delegated role
// names that contain "/" are found: the one an HTTP file server needs
// (1.targets/releases.json) and the escaped one (1.targets%2Freleases.json).
type dirStore struct{ dir string }

func (s *dirStore) where(rel string) string {
	if p, err := url.PathUnescape(rel); err == nil {
		rel = p
	}
	return filepath.Join(s.dir, filepath.FromSlash(rel))
}

func (s *dirStore) get(ctx context.Context, rel string, limit int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := url.PathUnescape(rel)
	if err != nil || !filepath.IsLocal(filepath.FromSlash(p)) {
		return nil, fmt.Errorf("read %q under %s: not a path inside the directory", rel, s.dir)
	}
	b, err := readFileBounded(filepath.Join(s.dir, filepath.FromSlash(p)), limit)
	if errors.Is(err, fs.ErrNotExist) && p != rel && filepath.IsLocal(rel) {
		b, err = readFileBounded(filepath.Join(s.dir, rel), limit)
	}
	if errors.Is(err, fs.ErrNotExist) {
		where := s.where(rel)
		return nil, fmt.Errorf("%s does not exist: %w", where, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: where})
	}
	return b, err
}

func readFileBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > limit {
		return nil, &tooLargeError{where: path, limit: limit}
	}
	return readBounded(f, path, limit, fi.Size())
}

// tufFetcher adapts a store to go-tuf's Fetcher. It is made per refresh
// so that downloads carry the refresh's context, and it caps every file
// at MaxMetadataBytes whatever length go-tuf asks for.
type tufFetcher struct {
	ctx     context.Context
	base    string // the RemoteMetadataURL given to go-tuf, ending with "/"
	store   store
	maxSize int64
	offline bool // loading persisted state only: every download fails
}

func (f *tufFetcher) DownloadFile(u string, maxLength int64, _ time.Duration) ([]byte, error) {
	if f.offline {
		return nil, fmt.Errorf("download %s: loading persisted trust data only", u)
	}
	rel, ok := strings.CutPrefix(u, f.base)
	if !ok {
		return nil, fmt.Errorf("download %s: outside the metadata location %s", u, f.base)
	}
	limit, bound := maxLength, "the length the signed metadata records"
	if isRootFile(rel) || rel == "timestamp.json" {
		bound = "go-tuf's bound for this file" // nothing signed records their length
	}
	if limit <= 0 || limit >= f.maxSize {
		limit, bound = f.maxSize, "MaxMetadataBytes"
	}
	b, err := f.store.get(f.ctx, rel, limit)
	var tl *tooLargeError
	if errors.As(err, &tl) {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is larger than %d bytes (%s)", tl.where, tl.limit, bound)}
	}
	var he *metadata.ErrDownloadHTTP
	if errors.As(err, &he) && he.StatusCode == http.StatusForbidden && isRootFile(rel) {
		// Object stores without list permission answer 403 for a missing
		// key; python-tuf likewise ends root rotation on 403 or 404.
		return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: u}
	}
	return b, err
}

// isRootFile reports whether rel is a versioned root, "N.root.json".
func isRootFile(rel string) bool {
	v, ok := strings.CutSuffix(rel, ".root.json")
	if !ok {
		return false
	}
	_, err := strconv.ParseUint(v, 10, 64)
	return err == nil
}
