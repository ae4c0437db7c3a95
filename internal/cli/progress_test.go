package cli

import (
	"slices"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

func TestTrackerCountsWhatRanInThisBuild(t *testing.T) {
	done := time.Now()
	apt, pkg, base := digest.FromString("apt"), digest.FromString("pkg"), digest.FromString("base")
	tests := []struct {
		name        string
		updates     [][]*client.Vertex
		cached, all int
		ran         []string
	}{
		{"ran once", [][]*client.Vertex{{{Digest: apt, Name: "apt", Completed: &done}}}, 0, 1, []string{"apt"}},
		{"cached", [][]*client.Vertex{{{Digest: base, Name: "base", Completed: &done, Cached: true}}}, 1, 1, []string{}},
		{"ran beside the resolve, then cached for the image", [][]*client.Vertex{
			{{Digest: apt, Name: "apt", Completed: &done}},
			{{Digest: apt, Name: "apt", Completed: &done, Cached: true}, {Digest: pkg, Name: "pkg", Completed: &done}},
		}, 0, 2, []string{"apt", "pkg"}},
		{"started, then finished from the cache", [][]*client.Vertex{
			{{Digest: base, Name: "base"}},
			{{Digest: base, Name: "base", Completed: &done, Cached: true}},
		}, 1, 1, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker()
			for _, vs := range tt.updates {
				tr.record(&client.SolveStatus{Vertexes: vs})
			}
			cached, all := tr.counts()
			if cached != tt.cached || all != tt.all {
				t.Errorf("counts = %d of %d cached, want %d of %d", cached, all, tt.cached, tt.all)
			}
			if got := tr.ran(); !slices.Equal(got, tt.ran) {
				t.Errorf("ran = %q, want %q", got, tt.ran)
			}
		})
	}
}
