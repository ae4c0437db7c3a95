package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var (
	// What `git describe --tags --always --dirty` prints after a tag: v0.3.0, v0.3.0-5-g1a2b3c4, v1.0.0-rc.1-dirty.
	describeTag = regexp.MustCompile(`^v?([0-9]+(?:\.[0-9]+)*)` + // the release
		`(?:[-.]?(a|alpha|b|beta|c|rc|pre|preview)[-.]?([0-9]*))?` + // a pre-release
		`(?:-([0-9]+)-g([0-9a-f]{4,40}))?` + // commits since the tag
		`(-dirty)?$`)
	// What it prints with no tag: the abbreviated commit.
	describeCommit = regexp.MustCompile(`^([0-9a-f]{7,40})(-dirty)?$`)
	// A PEP 440 local version label, for anything else (it prints "devel" outside a git checkout).
	localLabel = regexp.MustCompile(`^[a-zA-Z0-9]+(?:[-_.][a-zA-Z0-9]+)*$`)
)

// pep440 turns envd's version as the Makefile has it (ENVD_VERSION: git describe --tags --always --dirty, or set
// by hand) into the PEP 440 version of its wheels:
//
//	v0.3.0            0.3.0
//	v0.3.0-5-g1a2b3c4 0.3.0.dev5+g1a2b3c4   (five commits after the tag)
//	v1.0.0-rc.1       1.0.0rc1
//	1a2b3c4-dirty     0.0.0+g1a2b3c4.dirty  (no tag)
//	devel             0.0.0+devel           (no git)
//
// A commit after a tag is a .devN of that tag. Mind that PEP 440 sorts 0.3.0.dev5 before 0.3.0 itself: offered
// both, pip prefers the tagged release to the later commits (these wheels are installed from files, where that
// does not arise; an index of them would want 0.3.1.dev5, setuptools-scm's guess of the next release).
func pep440(describe string) (string, error) {
	d := strings.TrimSpace(describe)
	// First, since an abbreviated commit can look like a tag (1234567, 12a3456): git abbreviates to 7 or more
	// characters, and a tag this could be taken for (no "v", no ".") is unlikely.
	if m := describeCommit.FindStringSubmatch(d); m != nil {
		v := "0.0.0+g" + m[1]
		if m[2] != "" {
			v += ".dirty"
		}
		return v, nil
	}
	if m := describeTag.FindStringSubmatch(d); m != nil {
		var parts []string
		for _, p := range strings.Split(m[1], ".") {
			n, err := strconv.Atoi(p)
			if err != nil {
				return "", fmt.Errorf("envd's version %q: %w", describe, err)
			}
			parts = append(parts, strconv.Itoa(n)) // PEP 440 drops leading zeros
		}
		v := strings.Join(parts, ".")
		if m[2] != "" {
			pre := map[string]string{"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "rc", "rc": "rc", "pre": "rc", "preview": "rc"}[m[2]]
			n, _ := strconv.Atoi(m[3]) // "" is 0, as PEP 440 normalizes "rc" to "rc0"
			v += pre + strconv.Itoa(n)
		}
		var local []string
		if m[4] != "" {
			v += ".dev" + m[4]
			local = append(local, "g"+m[5])
		}
		if m[6] != "" {
			local = append(local, "dirty")
		}
		if len(local) > 0 {
			v += "+" + strings.Join(local, ".")
		}
		return v, nil
	}
	if localLabel.MatchString(d) {
		return "0.0.0+" + strings.NewReplacer("-", ".", "_", ".").Replace(strings.ToLower(d)), nil
	}
	return "", fmt.Errorf("envd's version %q is not one git describe prints (v1.2.3, v1.2.3-4-gabc1234, abc1234-dirty): "+
		"set ENVD_VERSION to a PEP 440 release such as 1.2.3", describe)
}
