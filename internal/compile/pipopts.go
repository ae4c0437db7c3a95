package compile

import (
	"slices"
)

// The steps that resolve and install the packages look where
// config.pip_index says, with the options of the build file's entries
// (ir.PipOptions) on top: an entry's --index-url replaces config.pip_index's
// URL, and the index proxy, which fronts config.pip_index alone, then
// serves only its extra URL. Tools (pip's upgrade, uv) come from
// config.pip_index whatever the entries say.

// packageIndex is config.pip_index as a step uses it.
type packageIndex struct {
	url     string   // "" for the installer's default (PyPI)
	proxied bool     // url is config.pip_index's, which the proxy may front
	extra   string   // config.pip_index's extra URL, which the proxy may front
	trusted []string // hosts config.pip_index trusts
}

// index is config.pip_index, with the entries' --index-url for a step that
// resolves or installs the packages.
func (c *compiler) index(packages bool) packageIndex {
	var p packageIndex
	idx := c.env.PipIndex
	if idx != nil {
		p = packageIndex{url: idx.URL, proxied: idx.URL != "", extra: idx.ExtraURL}
	}
	if o := c.env.PipOptions; packages && o != nil && o.IndexURL != "" {
		p.url, p.proxied = o.IndexURL, false
	}
	if idx != nil && idx.Trust {
		// The hosts of the URLs config.pip_index still gives.
		var urls []string
		if p.proxied {
			urls = append(urls, p.url)
		}
		p.trusted = trustedHosts(append(urls, p.extra)...)
	}
	return p
}

// pipArgs are pip's flags for the index.
func (p packageIndex) pipArgs() []string {
	var args []string
	if p.url != "" {
		args = append(args, "--index-url", p.url)
	}
	if p.extra != "" {
		args = append(args, "--extra-index-url", p.extra)
	}
	for _, h := range p.trusted {
		args = append(args, pipFlags.trust, h)
	}
	return args
}

// installerFlags are the names pip and uv give the entries' options.
type installerFlags struct {
	trust string   // a host to trust without valid TLS
	pre   []string // allow pre-releases
}

var (
	pipFlags = installerFlags{trust: "--trusted-host", pre: []string{"--pre"}}
	uvFlags  = installerFlags{trust: "--allow-insecure-host", pre: []string{"--prerelease", "allow"}}
)

// optionArgs are the entries' options beyond the index URL, as the
// installer's flags, each value its own word. Every step gets those that
// say where files are (an install step finds its pinned file through
// them); a resolve step also gets those that change what is chosen.
func (c *compiler) optionArgs(f installerFlags, idx packageIndex, resolve bool) []string {
	o := c.env.PipOptions
	if o == nil {
		return nil
	}
	var args []string
	for _, u := range o.ExtraIndexURLs {
		if u != idx.url && u != idx.extra {
			args = append(args, "--extra-index-url", u)
		}
	}
	for _, u := range o.FindLinks {
		args = append(args, "--find-links", u)
	}
	for _, h := range o.TrustedHosts {
		if !slices.Contains(idx.trusted, h) {
			args = append(args, f.trust, h)
		}
	}
	if resolve && o.Pre {
		args = append(args, f.pre...)
	}
	if resolve && o.NoDeps {
		args = append(args, "--no-deps")
	}
	return args
}

// optionWords are the entries' options as pip's flags, for step names.
func (c *compiler) optionWords() []string {
	o := c.env.PipOptions
	if o == nil {
		return nil
	}
	var w []string
	if o.IndexURL != "" {
		w = append(w, "--index-url", o.IndexURL)
	}
	for _, u := range o.ExtraIndexURLs {
		w = append(w, "--extra-index-url", u)
	}
	for _, u := range o.FindLinks {
		w = append(w, "--find-links", u)
	}
	for _, h := range o.TrustedHosts {
		w = append(w, "--trusted-host", h)
	}
	if o.Pre {
		w = append(w, "--pre")
	}
	if o.NoDeps {
		w = append(w, "--no-deps")
	}
	return w
}
