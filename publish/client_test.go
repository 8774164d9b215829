package publish_test

import (
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// tufClient is a go-tuf v2 updater pinned to a repository's 1.root.json, with
// a persistent local cache like trustproxy keeps: each refresh is a new
// Updater over the same cache, so rollback and rotation checks apply across
// refreshes.
type tufClient struct {
	t        *testing.T
	root     []byte
	cache    string
	metaURL  string
	tgtURL   string
	fetcher  func(*config.UpdaterConfig)
	transfer string
}

// newHTTPClient serves repoDir with a plain static file server.
func newHTTPClient(t *testing.T, repoDir string) *tufClient {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	t.Cleanup(srv.Close)
	return &tufClient{t: t, root: readRoot(t, repoDir), cache: t.TempDir(),
		metaURL: srv.URL + "/metadata", tgtURL: srv.URL + "/targets", transfer: "http"}
}

// newDirClient reads repoDir as a local directory (the air-gapped case).
func newDirClient(t *testing.T, repoDir string) *tufClient {
	t.Helper()
	const base = "file:///repo"
	return &tufClient{t: t, root: readRoot(t, repoDir), cache: t.TempDir(),
		metaURL: base + "/metadata", tgtURL: base + "/targets", transfer: "dir",
		fetcher: func(c *config.UpdaterConfig) { c.Fetcher = dirFetcher{base: base, dir: repoDir} }}
}

func readRoot(t *testing.T, repoDir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoDir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatalf("read pinned root: %v", err)
	}
	return b
}

func (c *tufClient) updater() (*updater.Updater, error) {
	cfg, err := config.New(c.metaURL, c.root)
	if err != nil {
		return nil, err
	}
	cfg.LocalMetadataDir = filepath.Join(c.cache, "metadata")
	cfg.LocalTargetsDir = filepath.Join(c.cache, "targets")
	cfg.RemoteTargetsURL = c.tgtURL
	if c.fetcher != nil {
		c.fetcher(cfg)
	}
	if b, err := os.ReadFile(filepath.Join(cfg.LocalMetadataDir, "root.json")); err == nil {
		cfg.LocalTrustedRoot = b // the newest root this client already trusts
	}
	up, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	return up, up.Refresh()
}

// get refreshes and looks name up; download also fetches and checks the bytes.
func (c *tufClient) get(name string, download bool) (*metadata.TargetFiles, []byte, error) {
	up, err := c.updater()
	if err != nil {
		return nil, nil, err
	}
	tf, err := up.GetTargetInfo(name)
	if err != nil {
		return nil, nil, err
	}
	if !download {
		return tf, nil, nil
	}
	_, data, err := up.DownloadTarget(tf, filepath.Join(c.t.TempDir(), "target"), "")
	return tf, data, err
}

// dirFetcher maps metadata and target URLs to files, answering 404 for a
// missing file so root rotation ends at the newest root.
type dirFetcher struct{ base, dir string }

func (f dirFetcher) DownloadFile(u string, maxLength int64, _ time.Duration) ([]byte, error) {
	rel, err := url.PathUnescape(strings.TrimPrefix(u, f.base))
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: u}
	}
	if err == nil && int64(len(b)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: "file longer than allowed"}
	}
	return b, err
}
