package cli

// An environment's life across ups: one envd at a time per name, a stopped
// environment resumed as it was, a replacement that says what it loses.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/docker"
	"envd.dev/envd/internal/envlock"
	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/sshconfig"
	"envd.dev/envd/internal/xdg"
)

// lockWait bounds how long up/down wait for another envd on the same name;
// the holder may be building, so it is long.
var lockWait = 10 * time.Minute

// lockEnv takes the environment's lock; action is what this envd is doing
// ("starting", "removing"), for whoever waits on it.
func lockEnv(ctx context.Context, s streams, name, action string) (*envlock.Lock, error) {
	path := filepath.Join(xdg.DataDir(), "envs", "."+name+".lock") // names never start with '.'
	l, err := envlock.Acquire(ctx, path, action, lockWait, func(h envlock.Holder) {
		fmt.Fprintf(s.err, "envd: another envd (pid %d) is %s %s; waiting for it (up to %s)\n", h.PID, h.Action, name, lockWait)
	})
	var busy *envlock.BusyError
	if errors.As(err, &busy) {
		return nil, fmt.Errorf("another envd (pid %d) is still %s %s after %s\n  hint: wait for it to finish, then run the command again",
			busy.Holder.PID, busy.Holder.Action, name, busy.Waited.Round(time.Second))
	}
	return l, err
}

// forgetEnv removes what envd keeps on the host for an environment that no
// longer has a container: its state dir (host key, agent config) and lock.
func forgetEnv(paths envPaths, l *envlock.Lock) {
	os.RemoveAll(paths.state)
	l.Remove()
}

// repairSSHEntry writes a running environment's ssh entry and pin again:
// an envd killed during up leaves a container without them, and a
// container of an older envd gets a new ssh port at every start.
func repairSSHEntry(paths envPaths, name string, env *runtime.Env) error {
	p := env.Port(compile.SSHPort)
	hostKey, err := readHostKey(filepath.Join(paths.state, hostKeyFile))
	if p == nil || err != nil {
		return nil // envd ssh says what is wrong
	}
	key, err := sshconfig.EnsureUserKey(paths.keyDir)
	if err != nil {
		return err
	}
	if err := sshconfig.Add(paths.sshConfig, sshconfig.Entry{
		Name: name, HostName: p.HostIP, Port: p.HostPort, User: containerUser(),
		IdentityFile: key.Path, KnownHostsFile: paths.knownHosts, ForwardAgent: forwardsAgent(env), Proxy: envdPath(),
	}); err != nil {
		return err
	}
	return sshconfig.KnownHosts{Path: paths.knownHosts}.Pin(sshconfig.Alias(name), hostKey)
}

// resumeOrReplace decides about an existing container (stopped, or running
// with --force): resume it when its image and options are what the user
// asks for now; else remove it, which needs --force when it holds changes.
func resumeOrReplace(ctx context.Context, s streams, rt runtime.Runtime, dk *docker.Client, old *runtime.Env, spec runtime.Spec, force bool) (resume bool, err error) {
	img, err := dk.InspectImage(ctx, spec.Image)
	if err != nil {
		return false, fmt.Errorf("image %s: %w", spec.Image, err)
	}
	var why string
	switch {
	case force:
		why = "--force"
	case old.ImageID != img.ID:
		why = "its image was rebuilt"
	case old.Labels[runtime.LabelSpec] != "" && old.Labels[runtime.LabelSpec] != runtime.SpecDigest(spec):
		why = "it was made with other options (mounts, ports, resources)"
	default:
		return true, nil // containers of older envds carry no digest: resumed too
	}
	changes, err := rt.Changes(ctx, old.Name)
	if err != nil {
		return false, err
	}
	lost := lostChanges(changes, ownPaths(spec))
	cname := runtime.ContainerName(old.Name)
	if len(lost) > 0 && !force {
		return false, fmt.Errorf("%s has to be replaced (%s), and its container holds %s, which would be lost\n"+
			"  hint: copy out what you need (docker cp %s:PATH .), then envd up --force replaces it; "+
			"or keep working in it as it is: docker start %s (its ssh entry stays valid)",
			old.Name, why, describeLost(lost), cname, cname)
	}
	if err := rt.Remove(ctx, old.Name); err != nil {
		return false, err
	}
	if len(lost) > 0 {
		fmt.Fprintf(s.err, "envd: replaced %s (%s); lost %s\n", old.Name, why, describeLost(lost))
	} else {
		fmt.Fprintf(s.err, "envd: replacing %s (%s); it held no changes outside its mounts\n", old.Name, why)
	}
	return false, nil
}

// ownPaths are paths a container changes by itself, not the user's work:
// mount points, the agent's logs and account edits, run-time dirs.
func ownPaths(spec runtime.Spec) []string {
	own := []string{logDir(), "/etc/passwd", "/etc/group", "/run", "/tmp"}
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
