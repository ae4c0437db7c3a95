package streamconn

import (
	"strings"
	"testing"
)

func TestCapture(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		last   bool
		writes []string
		want   string
	}{
		{"first bytes", 10, false, []string{"hello ", "world, ", "and more"}, "hello worl"},
		{"last bytes", 10, true, []string{"hello ", "world, ", "and more"}, ", and more"},
		{"short", 10, true, []string{" ok\n"}, "ok"},
		{"head keeps the start", 11, false, []string{"OCI runtime ", "exec failed", "\r\n"}, "OCI runtime"},
		{"tail keeps the end", 11, true, []string{"warning: slow\n", "error: dial unix\n"}, "dial unix"},
		{"short stays whole", 11, true, []string{"a", "b"}, "ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Capture{Max: tc.max, Last: tc.last}
			for _, w := range tc.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v: a capture takes everything", w, n, err)
				}
			}
			if got := c.String(); got != strings.TrimSpace(tc.want) {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
		})
	}
}
