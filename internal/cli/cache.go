package cli

import (
	"encoding/csv"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client"

	"envd.dev/envd/internal/builder"
	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/registry"
)

// A team cache is BuildKit's own: --export-cache writes the build's layers
// and the cache keys of every step (mode=max) to a registry or a directory,
// and --import-cache lets a builder that never built the environment take
// them from there instead of running the steps, so a second machine
// downloads no Python package and runs no install step.

// cacheFlags are --export-cache and --import-cache as given.
type cacheFlags struct {
	exports, imports []string
}

// parseCache reads one --export-cache or --import-cache value: BuildKit's
// CSV form, type=registry,ref=REF[,mode=min|max] or
// type=local,src=DIR (import) / dest=DIR (export), or a bare REF, a
// registry. Exports are mode=max unless said: every step's result, not
// only the image's layers. A registry on this machine is plain http.
func parseCache(spec string, export bool) (client.CacheOptionsEntry, error) {
	flag := "--import-cache"
	if export {
		flag = "--export-cache"
	}
	bad := func(format string, args ...any) error {
		return usageError{fmt.Errorf("%s %q: %s (e.g. type=registry,ref=registry.example.com/team/cache:ml or type=local,%s=DIR)",
			flag, spec, fmt.Sprintf(format, args...), map[bool]string{true: "dest", false: "src"}[export])}
	}
	e := client.CacheOptionsEntry{Attrs: map[string]string{}}
	if !strings.Contains(spec, "=") {
		e.Type, e.Attrs["ref"] = "registry", spec
	} else {
		fields, err := csv.NewReader(strings.NewReader(spec)).Read()
		if err != nil {
			return e, bad("%v", err)
		}
		for _, f := range fields {
			k, v, ok := strings.Cut(f, "=")
			if !ok || k == "" {
				return e, bad("%q is not KEY=VALUE", f)
			}
			if k == "type" {
				e.Type = v
			} else {
				e.Attrs[k] = v
			}
		}
	}
	switch e.Type {
	case "":
		if e.Attrs["ref"] == "" {
			return e, bad("no type=")
		}
		e.Type = "registry"
	case "registry", "local", "inline", "gha", "s3", "azblob":
	default:
		return e, bad("unknown type %q", e.Type)
	}
	switch e.Type {
	case "registry":
		ref := e.Attrs["ref"]
		if ref == "" {
			return e, bad("a registry cache needs ref=")
		}
		if err := checkTag(ref); err != nil {
			return e, bad("ref: %v", err)
		}
		if _, set := e.Attrs["registry.insecure"]; !set && loopbackRegistry(ref) {
			e.Attrs["registry.insecure"] = "true"
		}
	case "local":
		key := map[bool]string{true: "dest", false: "src"}[export]
		dir := e.Attrs[key]
		if dir == "" {
			return e, bad("a local cache needs %s=DIR", key)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return e, bad("%v", err)
		}
		e.Attrs[key] = abs
	}
	if export {
		if m := e.Attrs["mode"]; m == "" {
			e.Attrs["mode"] = "max"
		} else if m != "min" && m != "max" {
			return e, bad("mode is min or max, not %q", m)
		}
	}
	return e, nil
}

// caches turns the flags into BuildKit's entries. A context's cache
// (envd context create --cache REF) is imported unless --import-cache is
// given, and exported by envd build (exportDefault) unless --export-cache
// is given; envd up only imports it, as exporting would slow every start.
func (f cacheFlags) caches(c builderctx.Context, exportDefault bool) (imports, exports []client.CacheOptionsEntry, err error) {
	imp, exp := f.imports, f.exports
	if len(imp) == 0 && c.Cache != "" {
		imp = []string{c.Cache}
	}
	if len(exp) == 0 && c.Cache != "" && exportDefault {
		exp = []string{c.Cache}
	}
	for _, s := range imp {
		e, err := parseCache(s, false)
		if err != nil {
			return nil, nil, err
		}
		imports = append(imports, e)
	}
	for _, s := range exp {
		e, err := parseCache(s, true)
		if err != nil {
			return nil, nil, err
		}
		exports = append(exports, e)
	}
	return imports, exports, nil
}

// dockerLogin answers BuildKit for a registry host with the user's Docker
// login (config.json, its credential helpers), as docker build does.
func dockerLogin(host string) (builder.Credentials, bool) {
	c, found, err := registry.CredentialFor(host)
	if err != nil || !found {
		return builder.Credentials{}, false
	}
	if c.IdentityToken != "" {
		return builder.Credentials{Secret: c.IdentityToken}, true
	}
	return builder.Credentials{User: c.Username, Secret: c.Password}, true
}
