package buildkitd

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// mirror is a parsed Options.Mirror.
type mirror struct {
	host     string // HOST[:PORT], as buildkitd.toml names registries
	http     bool   // plain HTTP
	insecure bool   // skip TLS verification (loopback only)
}

// parseMirror accepts "HOST[:PORT]" (meaning plain HTTP, like the
// docker-registry mirror envd's set-up runs on 127.0.0.1:5000),
// "http://HOST[:PORT]" and "https://HOST[:PORT]".
func parseMirror(s string) (*mirror, error) {
	if s == "" {
		return nil, nil
	}
	bad := func(why string) error {
		return &Error{Kind: ErrBadMirror,
			Msg:  fmt.Sprintf("registry mirror %q: %s", s, why),
			Hint: "give HOST:PORT, http://HOST:PORT or https://HOST[:PORT], e.g. 127.0.0.1:5000"}
	}
	raw := s
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, bad("no host")
	}
	if u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, bad("only a host and port are allowed")
	}
	if p := u.Port(); p == "" && strings.HasSuffix(u.Host, ":") {
		return nil, bad("empty port")
	}
	m := &mirror{host: u.Host, http: u.Scheme == "http"}
	// A loopback registry is ours (e.g. the local mirror), so a self-signed
	// certificate is fine there; anywhere else TLS must verify.
	m.insecure = isLoopback(u.Hostname())
	return m, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// GC limits for the managed daemon. BuildKit's default policy drops cache
// mounts unused for 48 hours once they pass 512 MB; envd's pip/uv and apt
// cache mounts are shared by every environment and are the point of a fast
// rebuild, so here only uploaded local context and git checkouts get that
// short life. Everything else: never prune below 10 GB, drop what has not
// been used for 60 days, and keep the total under 40 GB while leaving 10% of
// the disk free. 40 GB holds a few CUDA-sized environments and their wheels;
// `buildctl prune` or a larger disk is the answer for more. (BuildKit reads
// "GB" as GiB.)
const (
	gcReserved = "10GB"
	gcMaxUsed  = "40GB"
	gcMinFree  = "10%"
	gcUnused   = "1440h" // 60 days
)

// renderConfig returns the buildkitd.toml for o. The same Options always give
// the same bytes: Ensure compares them with the file on disk to tell whether
// a running daemon must be restarted.
func renderConfig(o Options) ([]byte, error) {
	return renderConfigAt(o, o.rootDir(), nil)
}

// renderConfigAt is renderConfig with the state under root, and, when
// socketOwner is set ({uid, gid}), the socket given to that owner: a daemon
// in a container runs as root and serves a user who is not.
func renderConfigAt(o Options, root string, socketOwner *[2]int) ([]byte, error) {
	m, err := parseMirror(o.Mirror)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by envd for its managed buildkitd. envd rewrites this file, and")
	w("# restarts buildkitd, whenever its settings change: edits do not last.")
	w("root = %s", quote(root))
	w("")
	if socketOwner != nil {
		w("[grpc]")
		w("  uid = %d", socketOwner[0])
		w("  gid = %d", socketOwner[1])
		w("")
	}
	w("[worker.oci]")
	w("  enabled = true")
	w("  gc = true")
	w("")
	w("[worker.containerd]")
	w("  enabled = false")
	gc := func(all bool, filters, keep string, limits bool) {
		w("")
		w("[[worker.oci.gcpolicy]]")
		if all {
			w("  all = true")
		}
		if filters != "" {
			w("  filters = [%s]", filters)
		}
		if keep != "" {
			w("  keepDuration = %s", quote(keep))
		}
		if limits {
			w("  reservedSpace = %s", quote(gcReserved))
			w("  maxUsedSpace = %s", quote(gcMaxUsed))
			w("  minFreeSpace = %s", quote(gcMinFree))
		} else {
			w("  maxUsedSpace = %s", quote("512MB"))
		}
	}
	gc(false, `"type==source.local", "type==source.git.checkout"`, "48h", false)
	gc(false, "", gcUnused, true)
	gc(false, "", "", true)
	gc(true, "", "", true)
	if m != nil {
		w("")
		w("[registry.\"docker.io\"]")
		w("  mirrors = [%s]", quote(m.host))
		if m.http || m.insecure {
			w("")
			w("[registry.%s]", quote(m.host))
		}
		if m.http {
			w("  http = true")
		}
		if m.insecure {
			w("  insecure = true")
		}
	}
	return []byte(b.String()), nil
}

// quote makes a TOML basic string. Paths and host names need only these two
// escapes; control characters are not valid in either.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
