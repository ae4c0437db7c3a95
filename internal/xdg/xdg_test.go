package xdg

import "testing"

func TestDirs(t *testing.T) {
	tests := []struct {
		name     string
		env, val string // one XDG variable to set ("" = none)
		fn       func() string
		want     string
	}{
		{"config default", "", "", ConfigDir, "/home/u/.config/envd"},
		{"data default", "", "", DataDir, "/home/u/.local/share/envd"},
		{"cache default", "", "", CacheDir, "/home/u/.cache/envd"},
		{"config env", "XDG_CONFIG_HOME", "/x/cfg", ConfigDir, "/x/cfg/envd"},
		{"data env", "XDG_DATA_HOME", "/x/data", DataDir, "/x/data/envd"},
		{"cache env", "XDG_CACHE_HOME", "/x/cache", CacheDir, "/x/cache/envd"},
		{"relative ignored", "XDG_CONFIG_HOME", "rel/cfg", ConfigDir, "/home/u/.config/envd"},
		{"other var ignored", "XDG_DATA_HOME", "/x/data", ConfigDir, "/home/u/.config/envd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", "/home/u")
			for _, v := range []string{"XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"} {
				t.Setenv(v, "")
			}
			if tt.env != "" {
				t.Setenv(tt.env, tt.val)
			}
			if got := tt.fn(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
