package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"envd.dev/envd/internal/atomicfile"
	"envd.dev/envd/internal/xdg"
)

// layerOrder remembers the order of an image's merged layers between builds
// (see compile.Options.LayerOrder): a layer keeps its place, so Docker keeps
// every layer below a change.
type layerOrder struct {
	path string
	next []string // the order this build used, saved once it succeeds
}

func layerOrderFile(image string) *layerOrder {
	sum := sha256.Sum256([]byte(image))
	return &layerOrder{path: filepath.Join(xdg.DataDir(), "layers", hex.EncodeToString(sum[:12])+".json")}
}

// previous is the order of the last successful build, or nil.
func (l *layerOrder) previous() []string {
	var order []string
	if data, err := os.ReadFile(l.path); err == nil {
		json.Unmarshal(data, &order) // a damaged file only costs the old order
	}
	return order
}

// save records the order; failing to is not worth failing the build for.
func (l *layerOrder) save() {
	if l.next == nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return
	}
	data, _ := json.Marshal(l.next)
	atomicfile.Write(l.path, data, 0o644)
}
