package cli

import (
	"bytes"
	"context"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"
)

// tailLines is how much output of a failed step is shown.
const tailLines = 20

// tracker sits between BuildKit's status stream and the display: it keeps
// what the summary and a failure report need.
type tracker struct {
	mu       sync.Mutex
	steps    map[digest.Digest]bool // the graph's ops; nil until compiled
	vertices map[digest.Digest]*client.Vertex
	logs     map[digest.Digest]*bytes.Buffer
}

func newTracker() *tracker {
	return &tracker{vertices: map[digest.Digest]*client.Vertex{}, logs: map[digest.Digest]*bytes.Buffer{}}
}

// setSteps records which vertices are steps of our graph (and not, say, the
// exporter), so "cached of total" counts what the user's file asked for.
func (t *tracker) setSteps(ops []digest.Digest) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.steps = map[digest.Digest]bool{}
	for _, d := range ops {
		t.steps[d] = true
	}
}

// run copies in to the display until in is closed.
func (t *tracker) run(ctx context.Context, in chan *client.SolveStatus, d progressui.Display) error {
	out := make(chan *client.SolveStatus)
	done := make(chan error, 1)
	go func() {
		_, err := d.UpdateFrom(context.WithoutCancel(ctx), out)
		done <- err
	}()
	for s := range in {
		t.record(s)
		out <- s
	}
	close(out)
	return <-done
}

func (t *tracker) record(s *client.SolveStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range s.Vertexes {
		// A step a first solve ran (the branches built beside the resolve)
		// may come again, cached, from the image's solve: it ran in this
		// build all the same.
		if old := t.vertices[v.Digest]; old != nil && old.Completed != nil && !old.Cached && old.Error == "" && v.Cached {
			continue
		}
		t.vertices[v.Digest] = v
	}
	for _, l := range s.Logs {
		b := t.logs[l.Vertex]
		if b == nil {
			b = &bytes.Buffer{}
			t.logs[l.Vertex] = b
		}
		b.Write(l.Data)
		// Keep memory bounded on chatty steps: only the tail is ever shown.
		if b.Len() > 256<<10 {
			keep := append([]byte(nil), b.Bytes()[b.Len()-64<<10:]...)
			b.Reset()
			b.Write(keep)
		}
	}
}

// counts returns how many of the graph's steps ran and how many were cached.
func (t *tracker) counts() (cached, total int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for d, v := range t.vertices {
		if t.steps != nil && !t.steps[d] || v.Completed == nil {
			continue
		}
		total++
		if v.Cached {
			cached++
		}
	}
	return cached, total
}

// ran returns the names of the graph's steps that ran rather than coming
// from the cache, sorted.
func (t *tracker) ran() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := []string{}
	for d, v := range t.vertices {
		if (t.steps == nil || t.steps[d]) && v.Completed != nil && !v.Cached {
			names = append(names, v.Name)
		}
	}
	sort.Strings(names)
	return names
}

// failure is a step that failed, with the end of its output.
type failure struct {
	Name     string
	Tail     []string
	ExitCode int // -1 when unknown
}

var exitCodeRe = regexp.MustCompile(`exit code: (\d+)`)

// failed returns the step that failed, if any.
func (t *tracker) failed() *failure {
	t.mu.Lock()
	defer t.mu.Unlock()
	for d, v := range t.vertices {
		if v.Error == "" || strings.Contains(v.Error, "context canceled") {
			continue
		}
		f := &failure{Name: v.Name, ExitCode: -1}
		if m := exitCodeRe.FindStringSubmatch(v.Error); m != nil {
			f.ExitCode, _ = strconv.Atoi(m[1])
		}
		if b := t.logs[d]; b != nil {
			lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
			if len(lines) > tailLines {
				lines = lines[len(lines)-tailLines:]
			}
			f.Tail = lines
		}
		return f
	}
	return nil
}
