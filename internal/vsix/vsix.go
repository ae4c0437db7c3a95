// Package vsix installs VS Code extensions (.vsix files) where VS Code's
// remote server looks for them, fetching them from an Open VSX-compatible
// marketplace. The agent runs it inside the image at build time.
package vsix

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// DefaultMarketplace is Open VSX, the registry VS Code's open builds use.
const DefaultMarketplace = "https://open-vsx.org"

// Ref is "publisher.name" with an optional "@version".
type Ref struct {
	Publisher, Name, Version string
}

// ParseRef reads "ms-python.python" or "ms-python.python@2024.2.1".
func ParseRef(s string) (Ref, error) {
	id, version, _ := strings.Cut(s, "@")
	pub, name, ok := strings.Cut(id, ".")
	if !ok || pub == "" || name == "" {
		return Ref{}, fmt.Errorf("extension %q: want publisher.name[@version]", s)
	}
	return Ref{Publisher: pub, Name: name, Version: version}, nil
}

// Download fetches the extension's .vsix from the marketplace into dir and
// returns its path. Open VSX answers /api/{publisher}/{name}[/{version}]
// with the extension's metadata, whose files.download is the .vsix.
func Download(ctx context.Context, marketplace string, r Ref, dir string) (string, error) {
	meta := strings.TrimRight(marketplace, "/") + "/api/" + r.Publisher + "/" + r.Name
	if r.Version != "" {
		meta += "/" + r.Version
	}
	var info struct {
		Version string `json:"version"`
		Files   struct {
			Download string `json:"download"`
		} `json:"files"`
	}
	if err := getJSON(ctx, meta, &info); err != nil {
		return "", fmt.Errorf("extension %s.%s: %w", r.Publisher, r.Name, err)
	}
	if info.Files.Download == "" {
		return "", fmt.Errorf("extension %s.%s: %s names no download", r.Publisher, r.Name, meta)
	}
	resp, err := get(ctx, info.Files.Download)
	if err != nil {
		return "", fmt.Errorf("extension %s.%s: %w", r.Publisher, r.Name, err)
	}
	defer resp.Body.Close()
	f, err := os.CreateTemp(dir, "*.vsix")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	resp, err := get(ctx, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// Install unpacks a .vsix's extension/ folder into
// extensionsDir/<publisher>.<name>-<version>, the layout VS Code's server
// reads, and returns that directory.
func Install(vsixPath, extensionsDir string) (string, error) {
	zr, err := zip.OpenReader(vsixPath)
	if err != nil {
		return "", fmt.Errorf("%s is not a .vsix: %w", vsixPath, err)
	}
	defer zr.Close()
	var manifest struct {
		Publisher, Name, Version string
	}
	for _, f := range zr.File {
		if f.Name == "extension/package.json" {
			rc, err := f.Open()
			if err != nil {
				return "", err
			}
			err = json.NewDecoder(rc).Decode(&manifest)
			rc.Close()
			if err != nil {
				return "", fmt.Errorf("%s: extension/package.json: %w", vsixPath, err)
			}
		}
	}
	if manifest.Publisher == "" || manifest.Name == "" || manifest.Version == "" {
		return "", fmt.Errorf("%s: extension/package.json lacks publisher, name or version", vsixPath)
	}
	dest := filepath.Join(extensionsDir, strings.ToLower(manifest.Publisher+"."+manifest.Name)+"-"+manifest.Version)
	for _, f := range zr.File {
		rel, ok := strings.CutPrefix(f.Name, "extension/")
		if !ok || rel == "" || f.FileInfo().IsDir() {
			continue
		}
		target := filepath.Join(dest, filepath.FromSlash(rel))
		// No entry may escape the extension's directory.
		if !strings.HasPrefix(target, dest+string(filepath.Separator)) {
			return "", fmt.Errorf("%s: entry %q escapes the extension directory", vsixPath, f.Name)
		}
		if err := extract(f, target); err != nil {
			return "", err
		}
	}
	return dest, nil
}

func extract(f *zip.File, target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
