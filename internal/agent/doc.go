// Package agent is envd's in-container agent: an SSH server (exec, shell,
// PTY, sftp, port and agent forwarding) and a supervisor for init commands
// and services. cmd/envd-agent runs it as the container's entrypoint.
//
// envd on the host writes a Config as JSON and bind-mounts it into the
// container; the agent loads it with LoadConfig and calls Run. Config and
// Status are plain data so the host can import them on any OS; everything
// that manages processes is unix-only.
//
// Decisions worth knowing:
//
//   - Everything the agent starts (a session's command, an init command, a
//     service) leads a new session, and ending it signals every process of
//     that session, not only the leader's process group: an interactive
//     shell's jobs have groups of their own. SSH sessions get SIGHUP, then
//     SIGKILL after 2 s; services SIGTERM, then SIGKILL after 5 s. A process
//     survives its SSH session only by leaving it (setsid); long-running
//     things belong in services.
//   - Exit statuses are deliberate: the command's own, 128+n if signal n
//     killed it, 255 if the agent could not start it.
//   - Only public-key auth, against an authorized_keys file re-read on every
//     attempt; any user name is accepted, the session runs as the agent's
//     user.
//   - The agent does not need root. Started as root with Config.User set,
//     it gives that account the configured UID/GID and drops root before
//     anything else (BecomeUser). When it is PID 1 it forks itself (see
//     package reaper) so that reaping orphans cannot race os/exec.
package agent
