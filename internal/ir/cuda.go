package ir

import (
	"fmt"
	"strings"
)

// cudaReleases maps a CUDA minor version to the newest patch release that
// nvidia/cuda publishes images for.
var cudaReleases = map[string]string{
	"11.0": "11.0.3", "11.1": "11.1.1", "11.2": "11.2.2", "11.3": "11.3.1",
	"11.4": "11.4.3", "11.5": "11.5.2", "11.6": "11.6.2", "11.7": "11.7.1",
	"11.8": "11.8.0", "12.0": "12.0.1", "12.1": "12.1.1", "12.2": "12.2.2",
	"12.3": "12.3.2", "12.4": "12.4.1", "12.5": "12.5.1", "12.6": "12.6.3",
	"12.8": "12.8.1", "12.9": "12.9.1",
}

// CUDAImage returns the nvidia/cuda devel image for a CUDA version, a cuDNN
// major version ("" for none) and an Ubuntu release such as "ubuntu22.04".
//
// The tag scheme changed with CUDA 12.4: before it, tags name the cuDNN
// major ("11.6.2-cudnn8-devel-ubuntu20.04"); from it on they do not
// ("12.4.1-cudnn-devel-ubuntu22.04").
func CUDAImage(version, cudnn, osName string) (string, error) {
	full := version
	if strings.Count(version, ".") == 1 {
		var ok bool
		if full, ok = cudaReleases[version]; !ok {
			return "", fmt.Errorf("envd does not know CUDA %s; give the full version as published by nvidia/cuda (e.g. \"12.4.1\") or one of %s", version, strings.Join(cudaMinors(), ", "))
		}
	}
	if !strings.HasPrefix(osName, "ubuntu") {
		return "", fmt.Errorf("nvidia/cuda images are built on Ubuntu, not %q: use base(os=\"ubuntu22.04\") with install.cuda", osName)
	}
	flavor := "devel"
	if cudnn != "" {
		if cudaAtLeast(full, 12, 4) {
			flavor = "cudnn-devel"
		} else {
			flavor = "cudnn" + cudnn + "-devel"
		}
	}
	return fmt.Sprintf("docker.io/nvidia/cuda:%s-%s-%s", full, flavor, osName), nil
}

func cudaAtLeast(v string, major, minor int) bool {
	var ma, mi int
	fmt.Sscanf(v, "%d.%d", &ma, &mi)
	return ma > major || ma == major && mi >= minor
}

func cudaMinors() []string {
	var out []string
	for _, v := range []string{"11.0", "11.1", "11.2", "11.3", "11.4", "11.5", "11.6", "11.7", "11.8", "12.0", "12.1", "12.2", "12.3", "12.4", "12.5", "12.6", "12.8", "12.9"} {
		if _, ok := cudaReleases[v]; ok {
			out = append(out, v)
		}
	}
	return out
}

// ubuntuRelease names the Ubuntu release of a base, from os= or the image.
func (b Base) ubuntuRelease() string {
	if b.OS != "" {
		return strings.ToLower(b.OS)
	}
	ref := NormalizeImage(b.Image)
	for _, d := range []string{"20.04", "22.04", "24.04"} {
		if strings.HasSuffix(ref, "/ubuntu:"+d) {
			return "ubuntu" + d
		}
	}
	for tag, rel := range map[string]string{"focal": "20.04", "jammy": "22.04", "noble": "24.04"} {
		if strings.HasSuffix(ref, "/ubuntu:"+tag) {
			return "ubuntu" + rel
		}
	}
	return b.Image
}

// ApplyCUDA swaps the base for the matching nvidia/cuda image when
// install.cuda was called; the rest of the build stays on top of it.
func (e *Environment) ApplyCUDA() error {
	if e.CUDA == nil {
		return nil
	}
	img, err := CUDAImage(e.CUDA.Version, e.CUDA.CUDNN, e.Base.ubuntuRelease())
	if err != nil {
		return &Error{Pos: e.CUDA.Pos, Msg: "install.cuda: " + err.Error()}
	}
	e.Base.Image = img
	return nil
}
