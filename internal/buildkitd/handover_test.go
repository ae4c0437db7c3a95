package buildkitd

import "testing"

func TestHandoverHost(t *testing.T) {
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{"127.0.0.1:41234", true},
		{"OCI runtime exec failed: exec failed: no such file or directory: unknown", false},
		{"0.0.0.0:41234", false}, // not the loopback Docker pulls from
		{"127.0.0.1:0", false},
		{"", false},
	} {
		host, err := handoverHost(tc.line)
		if tc.ok != (err == nil) || tc.ok && host != tc.line {
			t.Errorf("handoverHost(%q) = %q, %v", tc.line, host, err)
		}
	}
}
