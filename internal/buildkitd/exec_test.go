package buildkitd

import "testing"

func TestCapture(t *testing.T) {
	for _, tc := range []struct {
		name   string
		last   bool
		writes []string
		want   string
	}{
		{"head keeps the start", false, []string{"OCI runtime ", "exec failed", "\r\n"}, "OCI runtime"},
		{"tail keeps the end", true, []string{"warning: slow\n", "error: dial unix\n"}, "dial unix"},
		{"short stays whole", true, []string{"a", "b"}, "ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &capture{max: 11, last: tc.last}
			for _, w := range tc.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := c.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}
