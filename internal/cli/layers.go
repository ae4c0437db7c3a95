package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"

	"envd.dev/envd/internal/atomicfile"
	"envd.dev/envd/internal/xdg"
)

// maxKnownLayers bounds the order of every layer this user has built: past
// it the oldest keys go, which costs only sharing with images long gone.
const maxKnownLayers = 4096

// layerOrder remembers the order of an image's merged layers between builds
// (see compile.Options.LayerOrder): a layer keeps its place, so Docker keeps
// every layer below a change. An image built for the first time takes the
// order of every layer this user has built before (known): two projects
// with the same packages then stack them alike, and Docker shares the
// layers up to where the projects differ.
type layerOrder struct {
	path  string // this image's order
	known string // every layer's key, in the order first built
	next  []string
}

func layerOrderFile(image string) *layerOrder {
	sum := sha256.Sum256([]byte(image))
	dir := filepath.Join(xdg.DataDir(), "layers")
	return &layerOrder{path: filepath.Join(dir, hex.EncodeToString(sum[:12])+".json"), known: filepath.Join(dir, "known.json")}
}

// previous is the order of the image's last successful build, or for a new
// image the order of every layer built before; nil when there is neither.
func (l *layerOrder) previous() []string {
	if order := readOrder(l.path); order != nil {
		return order
	}
	return readOrder(l.known)
}

// readOrder reads an order file; a missing or damaged one is nil (it only
// costs the old order).
func readOrder(path string) []string {
	var order []string
	if data, err := os.ReadFile(path); err == nil {
		json.Unmarshal(data, &order)
	}
	return order
}

// save records the order, and adds its new keys to the known order; failing
// to is not worth failing the build for.
func (l *layerOrder) save() {
	if l.next == nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return
	}
	writeOrder(l.path, l.next)
	known := readOrder(l.known)
	for _, k := range l.next {
		if !slices.Contains(known, k) {
			known = append(known, k)
		}
	}
	if len(known) > maxKnownLayers {
		known = known[len(known)-maxKnownLayers:]
	}
	writeOrder(l.known, known)
}

func writeOrder(path string, order []string) {
	data, _ := json.Marshal(order)
	atomicfile.Write(path, data, 0o644)
}
