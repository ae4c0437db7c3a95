package handover

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
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

// MaxCache bounds the blobs kept for images Docker still has: past it, the
// images built longest ago lose theirs (their next build pushes them again).
const MaxCache int64 = 8 << 30

// entry is one image in the index: its blobs, and when it was last built.
type entry struct {
	Blobs []string  `json:"blobs"`
	Built time.Time `json:"built"`
}

// LiveFunc says whether Docker still has image; an image it does not have
// needs no blobs here.
type LiveFunc func(image string) bool

// Keep records that image (a name such as "mnist:dev") now consists of the
// blobs of repo:ref, then collects garbage as GC does.
func (r *Registry) Keep(image, repo, ref string, live LiveFunc) error {
	blobs, err := r.manifestBlobs(repo, ref)
	if err != nil {
		return err
	}
	_, err = gc(r.dir, live, MaxCache, func(index map[string]entry) {
		index[image] = entry{Blobs: blobs, Built: time.Now()}
	})
	return err
}

// GC frees the hand-over cache in dir: it forgets the images live says
// Docker no longer has, keeps the rest under MaxCache, and deletes every
// blob no remaining image uses. It returns the bytes freed.
func GC(dir string, live LiveFunc) (int64, error) {
	if _, err := os.Stat(filepath.Join(dir, "sha256")); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	return gc(dir, live, MaxCache, nil)
}

func gc(dir string, live LiveFunc, max int64, update func(map[string]entry)) (int64, error) {
	unlock, err := flock(filepath.Join(dir, "index.lock"), syscall.LOCK_EX)
	if err != nil {
		return 0, err
	}
	defer unlock()
	indexPath := filepath.Join(dir, "images.json")
	index := map[string]entry{}
	if data, err := os.ReadFile(indexPath); err == nil {
		json.Unmarshal(data, &index) // a damaged or older index only costs a re-push
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	if update != nil {
		update(index)
	}
	sizes := map[string]int64{}
	blobDir := filepath.Join(dir, "sha256")
	entries, err := os.ReadDir(blobDir)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			sizes[e.Name()] = info.Size()
		}
	}
	for name := range index {
		if live != nil && !live(name) {
			delete(index, name)
		}
	}
	// Newest first; the oldest go while the rest is over max.
	names := make([]string, 0, len(index))
	for name := range index {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return index[names[i]].Built.After(index[names[j]].Built) })
	keep := map[string]bool{}
	var total int64
	for i, name := range names {
		var add int64
		for _, b := range index[name].Blobs {
			if h := strings.TrimPrefix(b, "sha256:"); !keep[h] {
				add += sizes[h]
			}
		}
		if i > 0 && total+add > max {
			delete(index, name)
			continue
		}
		total += add
		for _, b := range index[name].Blobs {
			keep[strings.TrimPrefix(b, "sha256:")] = true
		}
	}
	data, _ := json.MarshalIndent(index, "", "  ")
	tmp := indexPath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, indexPath); err != nil {
		return 0, err
	}
	// A build that runs now may have pushed blobs that are not in the index
	// yet: while one holds the in-use lock, only old blobs go.
	idle := false
	if unlockUse, err := flock(filepath.Join(dir, "inuse.lock"), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		defer unlockUse()
		idle = true
	}
	var freed int64
	for _, e := range entries {
		if keep[e.Name()] || strings.HasPrefix(e.Name(), ".upload-") && !idle {
			continue
		}
		info, err := e.Info()
		if err != nil || !idle && time.Since(info.ModTime()) < 10*time.Minute {
			continue
		}
		if os.Remove(filepath.Join(blobDir, e.Name())) == nil {
			freed += info.Size()
		}
	}
	return freed, nil
}

// flock takes a lock on path (created if need be) and returns its release.
func flock(path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

const lockShared = syscall.LOCK_SH
