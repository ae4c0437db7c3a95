package handover

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// manifestBlobs returns the blobs (config and layers) of a pushed manifest,
// following an index to its manifests.
func (r *Registry) manifestBlobs(repo, ref string) ([]string, error) {
	var m struct {
		Config    struct{ Digest string }   `json:"config"`
		Layers    []struct{ Digest string } `json:"layers"`
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	req, err := http.NewRequest("GET", fmt.Sprintf("http://%s/v2/%s/manifests/%s", r.Host(), repo, ref), nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(User, r.secret)
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
	}, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("manifest %s:%s: %s", repo, ref, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	var out []string
	if m.Config.Digest != "" {
		out = append(out, m.Config.Digest)
	}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	for _, sub := range m.Manifests {
		blobs, err := r.manifestBlobs(repo, sub.Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, blobs...)
	}
	return out, nil
}

// Keep records that image (a name such as "mnist:dev") now consists of the
// blobs of repo:ref, and deletes every blob no recorded image uses, so the
// store holds the latest build of each image and nothing more.
func (r *Registry) Keep(image, repo, ref string) error {
	blobs, err := r.manifestBlobs(repo, ref)
	if err != nil {
		return err
	}
	indexPath := filepath.Join(r.dir, "images.json")
	index := map[string][]string{}
	if data, err := os.ReadFile(indexPath); err == nil {
		json.Unmarshal(data, &index) // a damaged index only costs a re-push
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	index[image] = blobs
	data, _ := json.MarshalIndent(index, "", "  ")
	tmp := indexPath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, indexPath); err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, bs := range index {
		for _, b := range bs {
			keep[strings.TrimPrefix(b, "sha256:")] = true
		}
	}
	entries, err := os.ReadDir(filepath.Join(r.dir, "sha256"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if keep[e.Name()] || strings.HasPrefix(e.Name(), ".upload-") {
			continue
		}
		// A blob another build pushed moments ago is not in the index yet.
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 10*time.Minute {
			os.Remove(filepath.Join(r.dir, "sha256", e.Name()))
		}
	}
	return nil
}
