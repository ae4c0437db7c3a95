package ir

import (
	"strings"
	"testing"
)

func TestCUDAImage(t *testing.T) {
	tests := []struct {
		version, cudnn, os string
		want, err          string
	}{
		{"11.6", "8", "ubuntu20.04", "docker.io/nvidia/cuda:11.6.2-cudnn8-devel-ubuntu20.04", ""},
		{"11.8", "8", "ubuntu22.04", "docker.io/nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", ""},
		{"12.1", "8", "ubuntu22.04", "docker.io/nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04", ""},
		{"12.3", "9", "ubuntu22.04", "docker.io/nvidia/cuda:12.3.2-cudnn9-devel-ubuntu22.04", ""},
		{"12.4", "9", "ubuntu22.04", "docker.io/nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04", ""},
		{"12.6", "9", "ubuntu24.04", "docker.io/nvidia/cuda:12.6.3-cudnn-devel-ubuntu24.04", ""},
		{"12.4.0", "", "ubuntu22.04", "docker.io/nvidia/cuda:12.4.0-devel-ubuntu22.04", ""},
		{"10.2", "7", "ubuntu18.04", "", "does not know CUDA 10.2"},
		{"11.6", "8", "debian12", "", "built on Ubuntu"},
	}
	for _, tt := range tests {
		got, err := CUDAImage(tt.version, tt.cudnn, tt.os)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("CUDAImage(%s, %s, %s) error = %v, want %q", tt.version, tt.cudnn, tt.os, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CUDAImage(%s, %s, %s) = %q, %v; want %q", tt.version, tt.cudnn, tt.os, got, err, tt.want)
		}
	}
}

func TestApplyCUDA(t *testing.T) {
	e := &Environment{
		Base:   Base{Image: "docker.io/library/ubuntu:20.04", OS: "ubuntu20.04"},
		Python: &Python{},
		CUDA:   &CUDA{Version: "11.6", CUDNN: "8"},
	}
	if err := e.ApplyCUDA(); err != nil {
		t.Fatal(err)
	}
	if e.Base.Image != "docker.io/nvidia/cuda:11.6.2-cudnn8-devel-ubuntu20.04" || DistroPython(e.Base.Image) != "3.8" {
		t.Errorf("after ApplyCUDA: image %s, python %q", e.Base.Image, DistroPython(e.Base.Image))
	}
	e = &Environment{Base: Base{Image: "docker.io/library/ubuntu:jammy"}, CUDA: &CUDA{Version: "12.4", CUDNN: "9"}}
	if err := e.ApplyCUDA(); err != nil || e.Base.Image != "docker.io/nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04" {
		t.Errorf("image= base: %s, %v", e.Base.Image, err)
	}
}
