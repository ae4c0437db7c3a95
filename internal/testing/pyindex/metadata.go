package pyindex

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
)

// wheelMetadata returns a wheel's METADATA file. Served as
// "<wheel>.metadata" (PEP 658), it lets pip resolve without downloading the
// wheel, as it does against PyPI.
func wheelMetadata(path string) ([]byte, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".dist-info/METADATA") && strings.Count(f.Name, "/") == 1 {
			rc, err := f.Open()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	return nil, fmt.Errorf("%s has no METADATA", filepath.Base(path))
}

func metadataHash(path string) (string, error) {
	data, err := wheelMetadata(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// serveMetadata answers GET /files/<wheel>.metadata. It is not a download.
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request, wheel string) {
	data, err := wheelMetadata(filepath.Join(s.dir, wheel))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "max-age=365000000, immutable, public")
	w.Write(data)
}
