package logtail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	os.WriteFile(p, []byte("old\na\n\nb\r\nc\n"), 0o600)
	tests := []struct {
		offset int64
		n      int
		want   string
	}{
		{0, 20, "old|a|b|c"},
		{4, 20, "a|b|c"},
		{4, 2, "b|c"},
		{100, 20, ""},
	}
	for _, tt := range tests {
		if got := strings.Join(Lines(p, tt.offset, tt.n), "|"); got != tt.want {
			t.Errorf("Lines(%d, %d) = %q, want %q", tt.offset, tt.n, got, tt.want)
		}
	}
	if got := Lines(filepath.Join(t.TempDir(), "missing"), 0, 5); got != nil {
		t.Errorf("a missing log: %q", got)
	}
}
