package cli

import (
	"slices"
	"testing"
)

// A new image stacks its layers as those built before it (so Docker shares
// them across projects); an image built before keeps its own order.
func TestLayerOrderOfANewImageIsTheKnownOne(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	first := layerOrderFile("proj-a:dev")
	if got := first.previous(); got != nil {
		t.Fatalf("a first build on a new machine has an order: %q", got)
	}
	first.next = []string{"system:file", "python:a", "python:b", "python:f"}
	first.save()
	// The first image grows a package; its own order stays its own.
	again := layerOrderFile("proj-a:dev")
	if got := again.previous(); !slices.Equal(got, first.next) {
		t.Errorf("the image's order = %q, want %q", got, first.next)
	}
	again.next = []string{"system:file", "python:a", "python:b", "python:f", "python:add"}
	again.save()

	second := layerOrderFile("proj-b:dev")
	want := []string{"system:file", "python:a", "python:b", "python:f", "python:add"}
	if got := second.previous(); !slices.Equal(got, want) {
		t.Errorf("a new image's order = %q, want every layer built before, first-built first: %q", got, want)
	}
	second.next = []string{"system:file", "python:a", "python:b", "python:add", "python:c"}
	second.save()
	if got := readOrder(second.known); !slices.Equal(got, append(want, "python:c")) {
		t.Errorf("known = %q", got)
	}
}
