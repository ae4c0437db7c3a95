package cli

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"envd.dev/envd/internal/builderctx"
)

func TestParseCache(t *testing.T) {
	abs, _ := filepath.Abs("c")
	for _, tc := range []struct {
		spec      string
		export    bool
		wantType  string
		wantAttrs map[string]string
		errHas    string
	}{
		{"registry.example.com/team/cache:ml", false, "registry", map[string]string{"ref": "registry.example.com/team/cache:ml"}, ""},
		{"registry.example.com/team/cache:ml", true, "registry", map[string]string{"ref": "registry.example.com/team/cache:ml", "mode": "max"}, ""},
		{"type=registry,ref=127.0.0.1:5000/c:1,mode=min", true, "registry", map[string]string{"ref": "127.0.0.1:5000/c:1", "mode": "min", "registry.insecure": "true"}, ""},
		{"ref=reg.example/c", false, "registry", map[string]string{"ref": "reg.example/c"}, ""},
		{"type=local,src=c", false, "local", map[string]string{"src": abs}, ""},
		{"type=local,dest=c", true, "local", map[string]string{"dest": abs, "mode": "max"}, ""},
		{"type=local,dest=c", false, "", nil, "needs src=DIR"},
		{"type=registry", false, "", nil, "needs ref="},
		{"type=registry,ref=reg.example/UPPER", false, "", nil, "ref:"},
		{"type=nfs,ref=x", false, "", nil, `unknown type "nfs"`},
		{"type=registry,ref=r/c,mode=all", true, "", nil, "mode is min or max"},
		{"type=registry,,", false, "", nil, "not KEY=VALUE"},
	} {
		e, err := parseCache(tc.spec, tc.export)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("parseCache(%q): err %v, want one containing %q", tc.spec, err, tc.errHas)
			}
			continue
		}
		if err != nil || e.Type != tc.wantType || !reflect.DeepEqual(e.Attrs, tc.wantAttrs) {
			t.Errorf("parseCache(%q, export=%v) = %+v, %v; want %s %v", tc.spec, tc.export, e, err, tc.wantType, tc.wantAttrs)
		}
	}
}

// A context's cache is imported by build and up, and exported by build only.
func TestContextCache(t *testing.T) {
	c := builderctx.Context{Name: "team", Cache: "reg.example/team/cache"}
	for _, tc := range []struct {
		name          string
		flags         cacheFlags
		exportDefault bool
		imports       int
		exports       int
	}{
		{"build", cacheFlags{}, true, 1, 1},
		{"up", cacheFlags{}, false, 1, 0},
		{"up asked to export", cacheFlags{exports: []string{"reg.example/mine"}}, false, 1, 1},
		{"flags replace the context's", cacheFlags{imports: []string{"a.example/x", "b.example/y"}}, false, 2, 0},
	} {
		imp, exp, err := tc.flags.caches(c, tc.exportDefault)
		if err != nil || len(imp) != tc.imports || len(exp) != tc.exports {
			t.Errorf("%s: %d imports, %d exports (%v); want %d, %d", tc.name, len(imp), len(exp), err, tc.imports, tc.exports)
		}
	}
}
