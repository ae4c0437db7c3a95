package sshconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// KnownHosts is envd's own known_hosts file (e.g. ~/.config/envd/known_hosts),
// named by UserKnownHostsFile in each managed block. Keeping it apart from
// ~/.ssh/known_hosts means envd never rewrites a file the user curates.
type KnownHosts struct {
	Path string
}

// Pin records pub as the only host key for alias (e.g. "foo.envd"), replacing
// any earlier key for it. The ssh config entry sets HostKeyAlias, so the pin
// holds whatever port the environment gets next time.
func (k KnownHosts) Pin(alias string, pub ssh.PublicKey) error {
	if err := checkAlias(alias); err != nil {
		return err
	}
	line := knownhosts.Line([]string{alias}, pub) + "\n"
	return updateFile(k.Path, func(old []byte) ([]byte, error) {
		out := dropHost(old, alias)
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		return append(out, line...), nil
	})
}

// Unpin removes the host key lines for alias. A missing file or alias is not
// an error.
func (k KnownHosts) Unpin(alias string) error {
	if err := checkAlias(alias); err != nil {
		return err
	}
	if _, err := os.Stat(k.Path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return updateFile(k.Path, func(old []byte) ([]byte, error) {
		return dropHost(old, alias), nil
	})
}

// dropHost returns data without the lines whose host field is exactly alias;
// every other line is kept byte for byte.
func dropHost(data []byte, alias string) []byte {
	var out []byte
	for _, line := range splitLines(data) {
		if host, _, _ := strings.Cut(strings.TrimSpace(string(line)), " "); host == alias {
			continue
		}
		out = append(out, line...)
	}
	return out
}

func checkAlias(alias string) error {
	if alias == "" || strings.ContainsAny(alias, " \t\r\n,*?!") || strings.ContainsAny(alias[:1], "@#|[") {
		return fmt.Errorf("invalid known_hosts alias %q: want a plain host name such as \"foo%s\"", alias, Suffix)
	}
	return nil
}

// splitLines splits data after each '\n', keeping the line endings, so the
// pieces concatenate back to data exactly.
func splitLines(data []byte) [][]byte {
	var lines [][]byte
	for len(data) > 0 {
		n := bytes.IndexByte(data, '\n') + 1
		if n == 0 {
			n = len(data)
		}
		lines = append(lines, data[:n])
		data = data[n:]
	}
	return lines
}
