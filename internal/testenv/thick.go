package testenv

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cnabio/cnab-go/bundle"
	"github.com/cnabio/cnab-go/imagestore"
	"github.com/cnabio/cnab-go/imagestore/construction"
	"github.com/cnabio/cnab-to-oci/converter"
	dockerref "github.com/docker/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PorterArchive writes the CNAB thick bundle `porter archive` writes for
// a pushed bundle (getporter/porter pkg/porter/archive.go), with the
// libraries porter writes it with. porter itself is not served by the Go
// module proxy here, so its few steps are retraced:
//
//   - the bundle and its relocation map as porter's pull gets them:
//     cnab-to-oci's GenerateRelocationMap over the pushed index, and
//     bundle.json as cnab-go re-marshals the pulled config blob (WriteTo);
//   - relocation-mapping.json, json.Marshal of that map;
//   - every component image (sorted by name), then the invocation image,
//     pulled from the registry into artifacts/layout/ by cnab-go's
//     imagestore (construction.NewConstructor(false): the OCI layout store
//     porter uses), each checked against its contentDigest;
//   - porter's tar: "./" entries, zero times, 0755/0644, bundle.json and
//     relocation-mapping.json first, then the layout's oci-layout and
//     index.json, then blobs/, gzip at the default level.
//
// edit, if set, changes the archive directory before it is packed (to
// build the archives tests must refuse).
func (r *Registry) PorterArchive(t testing.TB, pb PushedBundle, out string, edit func(dir string)) {
	t.Helper()
	var ix ocispec.Index
	if err := json.Unmarshal(pb.Index, &ix); err != nil {
		t.Fatalf("porter archive: index: %v", err)
	}
	pulled, err := bundle.Unmarshal(pb.BundleJSON)
	if err != nil {
		t.Fatalf("porter archive: bundle.json: %v", err)
	}
	origin, err := dockerref.ParseNormalizedNamed(pb.Ref.Context().Name())
	if err != nil {
		t.Fatalf("porter archive: %v", err)
	}
	reloc, err := converter.GenerateRelocationMap(&ix, pulled, origin)
	if err != nil {
		t.Fatalf("porter archive: relocation map: %v", err)
	}

	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "bundle.json"))
	if err == nil {
		_, err = pulled.WriteTo(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("porter archive: write bundle.json: %v", err)
	}
	rb, err := json.Marshal(reloc)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "relocation-mapping.json"), rb, 0o644)
	}
	if err != nil {
		t.Fatalf("porter archive: write relocation-mapping.json: %v", err)
	}

	ctor, err := construction.NewConstructor(false)
	if err != nil {
		t.Fatalf("porter archive: %v", err)
	}
	store, err := ctor(imagestore.WithArchiveDir(dir), imagestore.WithLogs(io.Discard),
		imagestore.WithTransport(http.DefaultTransport.(*http.Transport)))
	if err != nil {
		t.Fatalf("porter archive: image store: %v", err)
	}
	add := func(img bundle.BaseImage) {
		loc, ok := reloc[img.Image]
		if !ok {
			t.Fatalf("porter archive: can not locate the referenced image: %s", img.Image)
		}
		dig, err := store.Add(loc)
		if err != nil {
			t.Fatalf("porter archive: add %s: %v", loc, err)
		}
		if img.Digest != "" && dig != img.Digest {
			t.Fatalf("porter archive: content digest mismatch: image %s has digest %s but the bundle says %s", img.Image, dig, img.Digest)
		}
	}
	keys := make([]string, 0, len(pulled.Images))
	for k := range pulled.Images {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(pulled.Images[k].BaseImage)
	}
	for _, in := range pulled.InvocationImages {
		add(in.BaseImage)
	}
	if edit != nil {
		edit(dir)
	}
	if err := porterTar(dir, out); err != nil {
		t.Fatalf("porter archive: %v", err)
	}
}

// porterTar packs dir the way porter's exporter.CustomTar does.
func porterTar(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	write := func(p string, fi os.FileInfo) error {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h := &tar.Header{ModTime: time.Unix(0, 0), AccessTime: time.Unix(0, 0), ChangeTime: time.Unix(0, 0)}
		h.Name = "."
		if rel != "." {
			h.Name = "./" + filepath.ToSlash(rel)
		}
		switch {
		case fi.IsDir():
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
			if !strings.HasSuffix(h.Name, "/") {
				h.Name += "/"
			}
		case fi.Mode().IsRegular():
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, fi.Size()
		default:
			return nil
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	}
	named := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		return write(p, fi)
	}
	layout := filepath.Join(dir, "artifacts", "layout")
	for _, p := range []string{dir, filepath.Join(dir, "bundle.json"), filepath.Join(dir, "relocation-mapping.json"),
		filepath.Join(dir, "artifacts"), layout, filepath.Join(layout, "oci-layout"), filepath.Join(layout, "index.json")} {
		if err := named(p); err != nil {
			return fmt.Errorf("tar %s: %w", p, err)
		}
	}
	err = filepath.Walk(filepath.Join(layout, "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return write(p, fi)
	})
	if err != nil {
		return fmt.Errorf("tar blobs: %w", err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}
