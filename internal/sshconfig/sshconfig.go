// Package sshconfig lets `ssh <name>.envd` and VS Code Remote-SSH reach an
// environment with no prompts: envd's client key, per-environment host keys
// pinned in envd's own known_hosts, and one managed block per environment in
// the user's ~/.ssh/config.
//
// Everything outside envd's blocks is left byte for byte as it was.
package sshconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Suffix turns an environment name into its ssh host name.
const Suffix = ".envd"

// Alias is the ssh host name of environment name, e.g. "foo.envd". It is both
// the config's Host pattern and its HostKeyAlias.
func Alias(name string) string { return name + Suffix }

const (
	beginMarker = "# BEGIN envd "
	endMarker   = "# END envd "
)

// Names end up in a Host pattern, where ssh would read wildcards, commas and
// spaces as syntax. Lower case only: ssh lowercases the host it is given
// but not the pattern, so "Foo.envd" would never match its own block.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// ValidateName reports whether name can be an environment's ssh host name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid environment name %q: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	return nil
}

// Entry is one environment's ssh config block.
type Entry struct {
	Name           string // environment name; the ssh host is Alias(Name)
	HostName       string // address the sshd port is published on, usually 127.0.0.1
	Port           int
	User           string
	IdentityFile   string // absolute path of envd's client private key
	KnownHostsFile string // absolute path of envd's known_hosts holding the pinned host key
	// ForwardAgent offers the user's ssh-agent to the environment. Off unless
	// asked for (envd up --forward-agent): while a session is open, anything
	// running in the environment could use the user's keys.
	ForwardAgent bool
	// Proxy, when set, is the absolute path of the envd binary: ssh then
	// reaches the environment through "envd ssh --stdio NAME" (ProxyCommand),
	// which finds it wherever it runs now, rather than through HostName and
	// Port, which are kept for the record.
	Proxy string
	// Context, when set, is the envd context the environment runs in: the
	// ProxyCommand names it, so `envd context use` elsewhere changes nothing.
	Context string
}

// Add writes e's block into the ssh config at path, replacing the block of the
// same name in place, or else inserting it at the top of the file: ssh takes
// the first value it finds for each option, so a block after the user's
// `Host *` would lose options such as User to it.
func Add(path string, e Entry) error {
	if err := e.validate(); err != nil {
		return err
	}
	return updateFile(path, func(old []byte) ([]byte, error) {
		blocks, err := findBlocks(path, old, e.Name)
		if err != nil {
			return nil, err
		}
		eol := lineEnding(old)
		block := e.render(eol)
		if len(blocks) == 0 {
			if len(old) == 0 {
				return block, nil
			}
			// The blank line is envd's too: Remove takes it away again.
			return concat(block, []byte(eol), old), nil
		}
		// Drop duplicates (a pasted copy, say) back to front so the offsets
		// of the first block stay valid, then replace the first in place.
		out := old
		for i := len(blocks) - 1; i > 0; i-- {
			out = blocks[i].cut(out)
		}
		first := blocks[0]
		if !bytes.HasSuffix(old[:first.end], []byte("\n")) {
			block = bytes.TrimSuffix(block, []byte(eol)) // it was the file's unterminated last line
		}
		return concat(out[:first.start], block, out[first.end:]), nil
	})
}

// Remove deletes environment name's block from the ssh config at path, with
// the blank line Add put after it. A missing block or file is not an error.
func Remove(path, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil // don't create ~/.ssh just to remove nothing from it
	}
	return updateFile(path, func(old []byte) ([]byte, error) {
		blocks, err := findBlocks(path, old, name)
		if err != nil {
			return nil, err
		}
		out := old
		for i := len(blocks) - 1; i >= 0; i-- { // back to front keeps offsets valid
			out = blocks[i].cut(out)
		}
		return out, nil
	})
}

// Entries lists the envd blocks in the ssh config at path, in file order. A
// missing file has none. Values a user broke by hand come back empty or zero.
func Entries(path string) ([]Entry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	blocks, err := findBlocks(path, data, "")
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for _, b := range blocks {
		e := Entry{Name: b.name}
		for _, line := range splitLines(data[b.start:b.end]) {
			key, value, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
			value = strings.Trim(strings.TrimSpace(value), `"`)
			switch strings.ToLower(key) {
			case "hostname":
				e.HostName = value
			case "port":
				e.Port, _ = strconv.Atoi(value)
			case "user":
				e.User = value
			case "identityfile":
				e.IdentityFile = value
			case "userknownhostsfile":
				e.KnownHostsFile = value
			case "forwardagent":
				e.ForwardAgent = value == "yes"
			case "proxycommand":
				proxy, _ := strings.CutSuffix(strings.TrimSpace(value), " ssh --stdio "+b.name)
				if i := strings.LastIndex(proxy, " --context "); i >= 0 {
					proxy, e.Context = proxy[:i], proxy[i+len(" --context "):]
				}
				e.Proxy = strings.Trim(proxy, `"`)
			}
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func (e Entry) render(eol string) []byte {
	lines := []string{
		beginMarker + e.Name + " (managed by envd; edits here are overwritten)",
		"Host " + Alias(e.Name),
		"  HostName " + e.HostName,
		"  Port " + strconv.Itoa(e.Port),
	}
	if e.Proxy != "" {
		lines = append(lines, "  ProxyCommand "+quote(e.Proxy)+proxyContext(e.Context)+" ssh --stdio "+e.Name)
	}
	lines = append(lines,
		"  User "+e.User,
		"  IdentityFile "+quote(e.IdentityFile),
		"  IdentitiesOnly yes",
		"  HostKeyAlias "+Alias(e.Name),
		"  UserKnownHostsFile "+quote(e.KnownHostsFile),
		// Security comes from the pinned host key, not from turning checks off.
		"  StrictHostKeyChecking yes",
		// Said either way, so a user's `ForwardAgent yes` for all hosts
		// below does not apply here unasked.
		"  ForwardAgent "+yesNo(e.ForwardAgent),
		// Blocks go at the top, where the user may have lines outside any
		// Host section (options, Include); without this they would apply to
		// this host only instead of to all hosts.
		"# back to all hosts, so the lines below keep their meaning",
		"Host *",
		endMarker+e.Name,
	)
	return []byte(strings.Join(lines, eol) + eol)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Host names and users are plain words; anything ssh could read as syntax
// (spaces, quotes, '#', '%' tokens, '${}') is refused rather than escaped.
var wordRE = regexp.MustCompile(`^[A-Za-z0-9_.@:-]+$`)

// proxyRE: a ProxyCommand goes through the user's shell, so envd's path has
// no character it would read (spaces are quoted).
var proxyRE = regexp.MustCompile(`^/[A-Za-z0-9 _./+@-]*$`)

func proxyContext(name string) string {
	if name == "" {
		return ""
	}
	return " --context " + name
}

func (e Entry) validate() error {
	if err := ValidateName(e.Name); err != nil {
		return err
	}
	if !wordRE.MatchString(e.HostName) {
		return fmt.Errorf("environment %s: invalid ssh HostName %q", e.Name, e.HostName)
	}
	if e.Port < 1 || e.Port > 65535 {
		return fmt.Errorf("environment %s: invalid ssh port %d: want 1-65535", e.Name, e.Port)
	}
	if !wordRE.MatchString(e.User) {
		return fmt.Errorf("environment %s: invalid ssh user %q", e.Name, e.User)
	}
	if err := checkPath("IdentityFile", e.IdentityFile); err != nil {
		return err
	}
	if e.Context != "" && !wordRE.MatchString(e.Context) {
		return fmt.Errorf("environment %s: invalid context name %q", e.Name, e.Context)
	}
	if e.Proxy != "" && !proxyRE.MatchString(e.Proxy) {
		return fmt.Errorf("environment %s: envd's path %q cannot go into a ProxyCommand (the shell would read some of its characters); install envd in a plain directory", e.Name, e.Proxy)
	}
	return checkPath("UserKnownHostsFile", e.KnownHostsFile)
}

// checkPath refuses paths ssh would not read back as written: relative ones,
// and ones with characters it expands (%, ${}) or that can't be quoted
// portably across OpenSSH versions (", \, control characters).
func checkPath(option, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("ssh %s %q: want an absolute path", option, path)
	}
	if i := strings.IndexFunc(path, func(r rune) bool {
		return r < ' ' || r == 0x7f || strings.ContainsRune(`"\%$`, r)
	}); i >= 0 {
		return fmt.Errorf("ssh %s %q: ssh would misread the character %q; use a path without it", option, path, path[i])
	}
	return nil
}

// quote wraps paths with spaces (and the rarer ' and #) in double quotes.
func quote(path string) string {
	if strings.ContainsAny(path, " \t'#") {
		return `"` + path + `"`
	}
	return path
}

// block is the byte range of one envd block: from the start of its BEGIN line
// to just past the line ending of its END line.
type block struct {
	name       string
	start, end int
}

// cut removes b from data, with the blank line that follows it, if any.
func (b block) cut(data []byte) []byte {
	end := b.end
	for _, blank := range []string{"\n", "\r\n"} {
		if bytes.HasPrefix(data[end:], []byte(blank)) {
			end += len(blank)
			break
		}
	}
	return concat(data[:b.start], data[end:])
}

// findBlocks returns the envd blocks in data named name (all blocks if name is
// ""), in file order. A block without its END line is an error: guessing
// where it ends could delete the user's lines.
func findBlocks(path string, data []byte, name string) ([]block, error) {
	var blocks []block
	var open *block
	openLine, lineNo, off := 0, 0, 0
	for _, raw := range splitLines(data) {
		lineNo++
		line := strings.TrimSpace(string(raw))
		begin, isBegin := strings.CutPrefix(line, beginMarker)
		switch {
		case open != nil && line == endMarker+open.name:
			open.end = off + len(raw)
			if name == "" || open.name == name {
				blocks = append(blocks, *open)
			}
			open = nil
		case open != nil && isBegin:
			return nil, unterminated(path, openLine, open.name)
		case isBegin:
			n, _, _ := strings.Cut(begin, " ")
			open = &block{name: n, start: off}
			openLine = lineNo
		}
		off += len(raw)
	}
	if open != nil {
		return nil, unterminated(path, openLine, open.name)
	}
	return blocks, nil
}

func unterminated(path string, line int, name string) error {
	return fmt.Errorf("%s:%d: envd block %q has no %q line: restore that line or delete the block, then retry", path, line, name, endMarker+name)
}

// lineEnding returns the file's line ending, so added lines match it.
func lineEnding(data []byte) string {
	if i := bytes.IndexByte(data, '\n'); i > 0 && data[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

// concat joins parts into a new slice, never aliasing its inputs.
func concat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}
