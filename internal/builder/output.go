package builder

import (
	"encoding/csv"
	"fmt"
	"strings"
)

// Export kinds accepted by --output.
const (
	ExportDocker = "docker" // load into the local Docker, or a docker archive with dest=
	ExportOCI    = "oci"    // an OCI image archive on disk
	ExportImage  = "image"  // an image in a registry (push=true) or only in the builder
)

// Export says where the built image goes.
type Export struct {
	Type string
	Name string // image reference (docker, image; optional for oci)
	Dest string // file (oci)
	Push bool
	// Attrs are passed to BuildKit's exporter as they are, e.g.
	// registry.insecure=true.
	Attrs map[string]string
}

// ParseOutput reads a --output value such as "type=oci,dest=env.tar".
// name is the image reference used when the value names none.
func ParseOutput(spec, name string) (Export, error) {
	e := Export{Type: ExportDocker, Name: name, Attrs: map[string]string{}}
	if strings.TrimSpace(spec) == "" {
		return e, nil
	}
	fields, err := csv.NewReader(strings.NewReader(spec)).Read()
	if err != nil {
		return e, fmt.Errorf("invalid --output %q: %w", spec, err)
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return e, fmt.Errorf("invalid --output %q: %q is not key=value (example: type=oci,dest=env.tar)", spec, f)
		}
		switch k {
		case "type":
			e.Type = v
		case "name":
			e.Name = v
		case "dest":
			e.Dest = v
		case "push":
			e.Push = v == "true"
			if v != "true" && v != "false" {
				return e, fmt.Errorf("invalid --output %q: push must be true or false", spec)
			}
		default:
			e.Attrs[k] = v
		}
	}
	switch e.Type {
	case ExportDocker:
	case ExportOCI:
		if e.Dest == "" {
			return e, fmt.Errorf("invalid --output %q: type=oci needs dest=FILE (example: type=oci,dest=env.tar)", spec)
		}
	case ExportImage:
		if e.Name == "" {
			return e, fmt.Errorf("invalid --output %q: type=image needs name=REF", spec)
		}
	default:
		return e, fmt.Errorf("invalid --output %q: unknown type %q; use docker, oci or image", spec, e.Type)
	}
	if e.Push && e.Type != ExportImage {
		return e, fmt.Errorf("invalid --output %q: push=true needs type=image", spec)
	}
	return e, nil
}

// IntoDocker reports whether the image goes straight into the local Docker.
func (e Export) IntoDocker() bool { return e.Type == ExportDocker && e.Dest == "" }
