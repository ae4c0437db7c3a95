// Package elfbin reads what envd needs to know of a Linux executable before
// it puts it into an image: its architecture, and whether it is static (it
// has no interpreter, so it runs in any image) or which libraries it needs.
package elfbin

import (
	"debug/elf"
	"errors"
	"io"
	"io/fs"
	"strings"
)

// Info describes one executable.
type Info struct {
	Arch   string   // as Go names it: amd64, arm64, ...
	Interp string   // the dynamic loader; "" for a static binary
	Needed []string // the libraries it names (DT_NEEDED); none when static
}

// Static reports whether the executable needs no libraries.
func (i Info) Static() bool { return i.Interp == "" }

// ErrNotELF is a file that is not a Linux executable.
var ErrNotELF = errors.New("not a Linux executable")

// Read inspects the executable at path. A file that cannot be opened gives
// its *fs.PathError; one that is not ELF gives ErrNotELF.
func Read(path string) (Info, error) {
	f, err := elf.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return Info{}, err
		}
		return Info{}, ErrNotELF
	}
	defer f.Close()
	info := Info{Arch: arch(f.Machine)}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return Info{}, err
			}
			info.Interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if info.Interp != "" {
		if info.Needed, err = f.ImportedLibraries(); err != nil {
			return Info{}, err
		}
	}
	return info, nil
}

func arch(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "amd64"
	case elf.EM_AARCH64:
		return "arm64"
	}
	return strings.ToLower(strings.TrimPrefix(m.String(), "EM_"))
}
