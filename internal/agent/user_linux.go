package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// BecomeUser makes the agent run as cfg.User when it was started as root,
// before it starts anything. The account first gets User's UID and GID in
// /etc/passwd and /etc/group, so that names, sudo rules and `id` agree with
// the IDs; then the process drops root for good, keeping the account's
// supplementary groups (sudo). HOME, USER and LOGNAME follow. Without root,
// or without User, it does nothing.
//
// Files keep their owners: if the image's user had another UID, its home
// directory and venv stay theirs, which is logged.
func BecomeUser(cfg *Config, log *slog.Logger) error {
	u := cfg.User
	if u == nil || os.Getuid() != 0 {
		return nil
	}
	if u.UID != 0 {
		groups, err := adoptAccount("/etc", u, cfg.SSH.Shell)
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
		checkHome(u, log)
		if cfg.OwnWorkdir {
			ownWorkdir(cfg.Workdir, u, log)
		}
		if err := dropRoot(u, groups); err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	for k, v := range map[string]string{"HOME": u.Home, "USER": u.Name, "LOGNAME": u.Name} {
		_ = os.Setenv(k, v)
	}
	log.Info("running as", "user", u.Name, "uid", u.UID, "gid", u.GID)
	return nil
}

// adoptAccount gives account u its UID, GID and home in etc/passwd and
// etc/group, adding the account or its group if missing. It returns the
// groups the account belongs to.
func adoptAccount(etc string, u *User, shell string) (groups []int, err error) {
	uid, gid := strconv.Itoa(u.UID), strconv.Itoa(u.GID)
	err = editLines(filepath.Join(etc, "passwd"), func(lines []string) []string {
		for i, line := range lines {
			// name:password:uid:gid:gecos:home:shell
			if f := strings.Split(line, ":"); len(f) == 7 && f[0] == u.Name {
				f[2], f[3], f[5] = uid, gid, u.Home
				lines[i] = strings.Join(f, ":")
				return lines
			}
		}
		return append(lines, strings.Join([]string{u.Name, "x", uid, gid, "", u.Home, shell}, ":"))
	})
	if err != nil {
		return nil, err
	}

	groups = []int{u.GID}
	err = editLines(filepath.Join(etc, "group"), func(lines []string) []string {
		found := false
		for i, line := range lines {
			// name:password:gid:members
			f := strings.Split(line, ":")
			if len(f) != 4 {
				continue
			}
			switch {
			case f[0] == u.Name:
				f[2], found = gid, true
				lines[i] = strings.Join(f, ":")
			case f[2] == gid:
				found = true // the GID has a group already; use it as is
			case slices.Contains(strings.Split(f[3], ","), u.Name):
				if n, err := strconv.Atoi(f[2]); err == nil {
					groups = append(groups, n)
				}
			}
		}
		if !found {
			lines = append(lines, u.Name+":x:"+gid+":")
		}
		return lines
	})
	return groups, err
}

// editLines rewrites a file line by line, and only if something changed
// (a write copies the file up into the container's layer).
func editLines(path string, edit func([]string) []string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := strings.TrimSuffix(string(data), "\n")
	var lines []string
	if text != "" {
		lines = strings.Split(text, "\n")
	}
	out := strings.Join(edit(slices.Clone(lines)), "\n") + "\n"
	if out == string(data) {
		return nil
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// checkHome creates the home directory if needed, and says so if it
// belongs to someone else (the image was built for another UID).
func checkHome(u *User, log *slog.Logger) {
	fi, err := os.Stat(u.Home)
	if os.IsNotExist(err) {
		if err := os.MkdirAll(u.Home, 0o755); err == nil {
			_ = os.Chown(u.Home, u.UID, u.GID)
		}
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != u.UID {
		log.Warn("home directory belongs to another uid; files the image put there may not be writable",
			"home", u.Home, "owner", st.Uid, "uid", u.UID)
	}
}

// ownWorkdir gives the workdir (only the directory itself) to u when it
// belongs to root: a fresh volume of the runtime's, which u must write in.
func ownWorkdir(dir string, u *User, log *slog.Logger) {
	fi, err := os.Stat(dir)
	if err != nil {
		return // the supervisor says so
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == 0 {
		if err := os.Chown(dir, u.UID, u.GID); err != nil {
			log.Warn("cannot give the workdir to the user", "workdir", dir, "err", err)
		}
	}
}

// dropRoot switches the process (all its threads) to u for good.
func dropRoot(u *User, groups []int) error {
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(u.GID); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(u.UID); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	return nil
}
