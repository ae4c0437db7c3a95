package ir

import (
	"fmt"
	"sort"
	"strings"
)

// Distro is what envd knows about a base operating system.
type Distro struct {
	// Image is the docker.io reference for the OS.
	Image string
	// Python is the version of the distribution's python3 package.
	Python string
}

// distros maps the article's os= names to images. ubuntu:* and debian:* are
// the official docker.io images, resolved through a registry mirror when one
// is configured.
var distros = map[string]Distro{
	"ubuntu20.04": {Image: "docker.io/library/ubuntu:20.04", Python: "3.8"},
	"ubuntu22.04": {Image: "docker.io/library/ubuntu:22.04", Python: "3.10"},
	"ubuntu24.04": {Image: "docker.io/library/ubuntu:24.04", Python: "3.12"},
	"debian11":    {Image: "docker.io/library/debian:bullseye", Python: "3.9"},
	"debian12":    {Image: "docker.io/library/debian:bookworm", Python: "3.11"},
}

// DefaultImage is the image of base() without os= or image=, and of a
// build file that never calls base(): the original envd's default.
const DefaultImage = "docker.io/library/ubuntu:22.04"

// LookupOS resolves an os= name such as "ubuntu20.04".
func LookupOS(os string) (Distro, error) {
	d, ok := distros[strings.ToLower(os)]
	if !ok {
		return Distro{}, fmt.Errorf("unknown os %q: use one of %s, or base(image=...) for any other image", os, strings.Join(OSNames(), ", "))
	}
	return d, nil
}

// OSNames lists the os= names envd knows, sorted.
func OSNames() []string {
	var names []string
	for n := range distros {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DistroPython returns the python3 version shipped by the distribution of a
// base image, or "" when envd does not know the image.
func DistroPython(image string) string {
	ref := NormalizeImage(image)
	for _, d := range distros {
		if d.Image == ref {
			return d.Python
		}
	}
	// nvidia/cuda tags end in the Ubuntu release they are built on.
	if i := strings.LastIndex(ref, "-ubuntu"); i >= 0 && strings.HasPrefix(ref, "docker.io/nvidia/cuda:") {
		if d, ok := distros[ref[i+1:]]; ok {
			return d.Python
		}
	}
	aliases := map[string]string{
		"docker.io/library/debian:12":    "3.11",
		"docker.io/library/debian:11":    "3.9",
		"docker.io/library/ubuntu:jammy": "3.10",
		"docker.io/library/ubuntu:focal": "3.8",
		"docker.io/library/ubuntu:noble": "3.12",
	}
	return aliases[ref]
}

// NormalizeImage turns a short Docker reference ("ubuntu:22.04",
// "nvidia/cuda:12.4.1-base") into its full docker.io form.
func NormalizeImage(ref string) string {
	name, rest := ref, ""
	if i := strings.IndexAny(ref, "@"); i >= 0 {
		name, rest = ref[:i], ref[i:]
	}
	// A tag is a ':' after the last '/'.
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, rest = name[:i], name[i:]+rest
	} else if rest == "" {
		rest = ":latest"
	}
	first, _, hasSlash := strings.Cut(name, "/")
	switch {
	case !hasSlash:
		name = "docker.io/library/" + name
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		name = "docker.io/" + name
	}
	return name + rest
}
