package envs

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"envd.dev/envd/internal/contract"
	"envd.dev/envd/internal/runtime"
)

// resumeOrReplace decides about an existing environment of a Keeper runtime
// (stopped, or running with --force): resume it when its image and options
// are what the user asks for now; else remove it, which needs --force when
// it holds changes outside its mounts.
func (m *Manager) resumeOrReplace(ctx context.Context, k runtime.Keeper, old *runtime.Env, spec runtime.Spec, logDir string, force bool) (resume bool, err error) {
	why := "--force"
	if !force {
		if why, err = k.Differs(ctx, old, spec); err != nil || why == "" {
			return err == nil, err
		}
	}
	changes, err := k.Changes(ctx, old.Name)
	if err != nil {
		return false, err
	}
	lost := lostChanges(changes, ownPaths(spec, logDir))
	if len(lost) > 0 && !force {
		return false, fmt.Errorf("%s has to be replaced (%s), and it holds %s, which would be lost\n"+
			"  hint: copy out what you need (%s), then envd up --force replaces it; "+
			"or keep working in it as it is (%s; its ssh entry stays valid)",
			old.Name, why, describeLost(lost), k.CopyOutHint(old.Name), k.StartHint(old.Name))
	}
	if err := m.Runtime.Remove(ctx, old.Name); err != nil {
		return false, err
	}
	if len(lost) > 0 {
		m.logf("replaced %s (%s); lost %s", old.Name, why, describeLost(lost))
	} else {
		m.logf("replacing %s (%s); it held no changes outside its mounts", old.Name, why)
	}
	return false, nil
}

// ownPaths are paths an environment changes by itself, not the user's
// work: mount points, the agent's logs and account edits, run-time dirs.
func ownPaths(spec runtime.Spec, logDir string) []string {
	own := []string{logDir, "/etc/passwd", "/etc/group", "/run", "/tmp", spec.Project.Path, contract.RunDir}
	for _, m := range spec.Mounts {
		own = append(own, m.Target)
	}
	return own
}

// lostChanges are the changed paths outside own, without the directories
// that only changed because something below them did.
func lostChanges(changes []runtime.Change, own []string) []string {
	under := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") }
	paths := make([]string, 0, len(changes))
	for _, c := range changes {
		paths = append(paths, c.Path)
	}
	// Sorted with '/' first, a directory's children follow it directly.
	sort.Slice(paths, func(i, j int) bool {
		return strings.ReplaceAll(paths[i], "/", "\x00") < strings.ReplaceAll(paths[j], "/", "\x00")
	})
	var lost []string
	for i, p := range paths {
		if i+1 < len(paths) && strings.HasPrefix(paths[i+1], p+"/") {
			continue // a parent: its children say more
		}
		mine := false
		for _, o := range own {
			mine = mine || under(p, o)
		}
		if !mine {
			lost = append(lost, p)
		}
	}
	return lost
}

// describeLost: "3 changed files (/root/a, /root/b, /root/c)", the first few.
func describeLost(lost []string) string {
	const shown = 5
	noun := "changed files"
	if len(lost) == 1 {
		noun = "changed file"
	}
	list := strings.Join(lost[:min(shown, len(lost))], ", ")
	if len(lost) > shown {
		list += fmt.Sprintf(", and %d more", len(lost)-shown)
	}
	return fmt.Sprintf("%d %s (%s)", len(lost), noun, list)
}
