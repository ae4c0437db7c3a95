package ir

import (
	"net/url"
	"regexp"
	"strings"
)

// pipHost is a host name or IPv4 address, optionally with a port, as pip's
// --trusted-host takes it.
var pipHost = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)

// shellSyntax are the characters that mean something to a shell and to no
// requirement, option or index URL envd passes on: refusing them keeps any
// entry from ever being read as a command, quoting or not.
const shellSyntax = ";&|$`'\"\\(){}"

// ShellSyntax returns the first character of s that is shell syntax or a
// control character, or "".
func ShellSyntax(s string) string {
	for _, r := range s {
		if strings.ContainsRune(shellSyntax, r) || (r < 0x20 && r != '\t') || r == 0x7f {
			return string(r)
		}
	}
	return ""
}

// PipURLProblem says why s cannot be an index or find-links URL, or "".
func PipURLProblem(s string) string {
	if c := ShellSyntax(s); c != "" || strings.ContainsAny(s, " \t") {
		return "holds characters no URL envd passes to pip may hold"
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a URL"
	case u.Scheme == "http" || u.Scheme == "https":
		if u.Host == "" {
			return "has no host"
		}
	case u.Scheme == "file":
		if u.Path == "" {
			return "has no path"
		}
	default:
		return "is not an http://, https:// or file:// URL"
	}
	return ""
}

// PipHostProblem says why s cannot be a --trusted-host value, or "".
func PipHostProblem(s string) string {
	if !pipHost.MatchString(s) {
		return "is not a host name (optionally with :port)"
	}
	return ""
}

// validate checks the URLs and hosts, which lang already did for a build
// file; an environment made by other code gets the same checks.
func (o *PipOptions) validate() []error {
	var errs []error
	urls := append(append([]string{}, o.ExtraIndexURLs...), o.FindLinks...)
	if o.IndexURL != "" {
		urls = append([]string{o.IndexURL}, urls...)
	}
	for _, u := range urls {
		if p := PipURLProblem(u); p != "" {
			errs = append(errs, Errorf(o.Pos, `give a URL such as "https://download.pytorch.org/whl/cpu"`, "pip option URL %q %s", u, p))
		}
	}
	for _, h := range o.TrustedHosts {
		if p := PipHostProblem(h); p != "" {
			errs = append(errs, Errorf(o.Pos, `give the host alone, e.g. "--trusted-host download.pytorch.org"`, "--trusted-host %q %s", h, p))
		}
	}
	return errs
}
