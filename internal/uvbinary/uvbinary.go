// Package uvbinary gets the uv executable onto the host from a Python
// package index, once per version: it finds uv's static (musllinux) wheel
// on a PEP 503 simple index, checks its sha256, and keeps the binary in a
// cache directory. A build mounts that binary into its steps, so that
// resolving and installing need not wait for a pip inside the image to
// fetch uv first.
package uvbinary

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/html"
)

// BinaryPath is where Ensure leaves uv, below the directory it returns.
const BinaryPath = "bin/uv"

// maxWheelBytes bounds a download: uv's wheels are about 20 MB.
const maxWheelBytes = 256 << 20

// Ensure returns dir, holding uv version at BinaryPath for Linux on arch
// ("amd64" or "arm64"): from the cache when it is there, else fetched from
// the first of indexes (simple index URLs) that has the static wheel.
func Ensure(ctx context.Context, client *http.Client, cacheDir, version, arch string, indexes []string) (string, error) {
	machine, ok := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[arch]
	if !ok {
		return "", fmt.Errorf("uv: no static build for linux/%s", arch)
	}
	dir := filepath.Join(cacheDir, Subdir(version, arch))
	if fi, err := os.Stat(filepath.Join(dir, BinaryPath)); err == nil && fi.Mode().IsRegular() {
		return dir, nil
	}
	removeStale(cacheDir)
	var errs []error
	for _, index := range indexes {
		file, err := findWheel(ctx, client, index, version, machine)
		if err == nil {
			err = install(ctx, client, file, version, dir)
		}
		if err == nil {
			return dir, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", redact(index), err))
	}
	return "", errors.Join(errs...)
}

// removeStale deletes what fetches cut short (envd killed mid-download)
// left behind; a fetch under way is younger than an hour.
func removeStale(cacheDir string) {
	tmps, _ := filepath.Glob(filepath.Join(cacheDir, tmpPattern))
	for _, t := range tmps {
		if fi, err := os.Stat(t); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.RemoveAll(t)
		}
	}
}

// tmpPattern names the directories fetches write into before their rename.
const tmpPattern = ".uv-*"

// Subdir is the directory below the cache directory that Ensure returns.
func Subdir(version, arch string) string { return version + "-linux-" + arch }

// wheelFile is one link of a project page.
type wheelFile struct {
	url    string
	sha256 string
}

// findWheel reads the index's page for uv and picks the static wheel of
// version for machine.
func findWheel(ctx context.Context, client *http.Client, index, version, machine string) (wheelFile, error) {
	page, err := url.Parse(strings.TrimSuffix(index, "/") + "/uv/")
	if err != nil {
		return wheelFile{}, err
	}
	body, err := get(ctx, client, page.String(), 8<<20)
	if err != nil {
		return wheelFile{}, err
	}
	defer body.Close()
	links, err := links(body)
	if err != nil {
		return wheelFile{}, fmt.Errorf("reading %s: %w", redact(page.String()), err)
	}
	prefix := "uv-" + version + "-"
	for _, href := range links {
		u, err := page.Parse(href)
		if err != nil {
			continue
		}
		name := path.Base(u.Path)
		if !strings.HasPrefix(name, prefix) || !isStaticWheel(name, machine) {
			continue
		}
		sum, ok := strings.CutPrefix(u.Fragment, "sha256=")
		if !ok || len(sum) != 64 {
			return wheelFile{}, fmt.Errorf("%s has no sha256 on the index", name)
		}
		u.Fragment = ""
		return wheelFile{url: u.String(), sha256: strings.ToLower(sum)}, nil
	}
	return wheelFile{}, fmt.Errorf("no static wheel of uv %s for %s", version, machine)
}

// isStaticWheel tells uv's musllinux wheels, whose binary is statically
// linked and so runs on any Linux image, from its glibc ones.
func isStaticWheel(name, machine string) bool {
	if !strings.HasSuffix(name, ".whl") {
		return false
	}
	for _, tag := range strings.Split(strings.TrimSuffix(name, ".whl"), ".") {
		if strings.Contains(tag, "musllinux_") && strings.HasSuffix(tag, "_"+machine) {
			return true
		}
	}
	return false
}

// links returns the href of every anchor of a PEP 503 page.
func links(r io.Reader) ([]string, error) {
	var out []string
	z := html.NewTokenizer(r)
	for {
		switch z.Next() {
		case html.ErrorToken:
			if errors.Is(z.Err(), io.EOF) {
				return out, nil
			}
			return nil, z.Err()
		case html.StartTagToken:
			tok := z.Token()
			if tok.Data != "a" {
				continue
			}
			for _, a := range tok.Attr {
				if a.Key == "href" {
					out = append(out, a.Val)
				}
			}
		}
	}
}

// install downloads the wheel, checks its hash and puts its uv binary into
// dir, whole or not at all.
func install(ctx context.Context, client *http.Client, f wheelFile, version, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), tmpPattern)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	wheel := filepath.Join(tmp, "uv.whl")
	if err := download(ctx, client, f, wheel); err != nil {
		return err
	}
	if err := extract(wheel, "uv-"+version+".data/scripts/uv", filepath.Join(tmp, "out", BinaryPath)); err != nil {
		return err
	}
	// A directory without the binary (emptied by hand, say) is in the way.
	if _, err := os.Stat(filepath.Join(dir, BinaryPath)); err != nil {
		os.RemoveAll(dir)
	}
	if err := os.Rename(filepath.Join(tmp, "out"), dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, BinaryPath)); serr == nil {
			return nil // another build got there first
		}
		return err
	}
	return nil
}

func download(ctx context.Context, client *http.Client, f wheelFile, dest string) error {
	body, err := get(ctx, client, f.url, maxWheelBytes)
	if err != nil {
		return err
	}
	defer body.Close()
	out, err := os.Create(dest)
	if err != nil {
		return err
	}
	defer out.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), body); err != nil {
		return fmt.Errorf("downloading %s: %w", path.Base(f.url), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.sha256 {
		return fmt.Errorf("%s: sha256 %s, the index says %s", path.Base(f.url), got, f.sha256)
	}
	return out.Close()
}

// extract copies one member of the zip at src to dest, executable.
func extract(src, member, dest string) error {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		if zf.Name != member {
			continue
		}
		in, err := zf.Open()
		if err != nil {
			return err
		}
		defer in.Close()
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, io.LimitReader(in, maxWheelBytes)); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
	return fmt.Errorf("the wheel has no %s", member)
}

// get returns the body of a 200 answer, cut off after limit bytes.
func get(ctx context.Context, client *http.Client, u string, limit int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", redact(u), resp.Status)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, limit), resp.Body}, nil
}

// redact drops a password from an index URL before it is shown.
func redact(u string) string {
	if pu, err := url.Parse(u); err == nil {
		return pu.Redacted()
	}
	return u
}
