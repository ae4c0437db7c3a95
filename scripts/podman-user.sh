#!/usr/bin/env bash
# A throwaway user who is not root and has no Docker, only rootless Podman with its API service running, as
# a Podman user on a laptop has: for the benchmark (bench/up.sh) and for trying envd on Podman by hand.
#   scripts/podman-user.sh up NAME UID   add NAME (UID, group users, subordinate IDs), start its service
#   scripts/podman-user.sh down NAME     stop the service and every process Podman left for NAME, remove NAME
# The e2e test (e2e/podman_test.go) makes its own user the same way. No systemd runs here, so the service is
# started by hand and its PID kept in /run/user/UID/podman-service.pid.
set -euo pipefail
die() { printf 'podman-user: error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (it adds and removes a user)"
command -v podman >/dev/null || die "podman is not installed (scripts/setup.sh installs it)"

case ${1:-} in
up)
	name=${2:?usage: $0 up NAME UID} uid=${3:?usage: $0 up NAME UID}
	id "$name" >/dev/null 2>&1 && die "user $name exists already"
	useradd --uid "$uid" --gid users --create-home --shell /bin/bash "$name"
	first=$((300000 + (uid % 100) * 65536))
	usermod --add-subuids "$first-$((first + 65535))" --add-subgids "$first-$((first + 65535))" "$name"
	run=/run/user/$uid
	[ -d /run/user ] || touch /run/.envd-made-run-user # so that down removes it again
	mkdir -p "$run/podman"
	chmod 0700 "$run"
	home=$(getent passwd "$name" | cut -d: -f6)
	# This machine kind gives /dev/fuse to root only, so Podman would fall back to vfs; the kernel's overlay
	# works in a user namespace. A stock Debian picks overlay (through fuse-overlayfs) by itself.
	mkdir -p "$home/.config/containers"
	printf '[storage]\ndriver = "overlay"\n' >"$home/.config/containers/storage.conf"
	chown -R "$uid:users" "$run" "$home/.config"
	cd "$home" # the service's cwd must be the user's
	setpriv --reuid="$uid" --regid=users --init-groups -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" \
		USER="$name" XDG_RUNTIME_DIR="$run" podman system service --time=0 "unix://$run/podman/podman.sock" \
		>"$run/podman-service.log" 2>&1 &
	echo $! >"$run/podman-service.pid"
	for _ in $(seq 300); do
		[ -S "$run/podman/podman.sock" ] && break
		kill -0 "$(cat "$run/podman-service.pid")" 2>/dev/null || die "podman system service exited: $(cat "$run/podman-service.log")"
		sleep 0.1
	done
	[ -S "$run/podman/podman.sock" ] || die "podman system service did not answer on $run/podman/podman.sock"
	echo "user $name (uid $uid): XDG_RUNTIME_DIR=$run, Podman service pid $(cat "$run/podman-service.pid")"
	;;
down)
	name=${2:?usage: $0 down NAME}
	uid=$(id -u "$name" 2>/dev/null) || exit 0
	run=/run/user/$uid
	[ -f "$run/podman-service.pid" ] && kill "$(cat "$run/podman-service.pid")" 2>/dev/null || true
	sleep 0.5
	# Rootless Podman leaves its pause process (holding the user namespace) and a conmon per container.
	for pid in $(pgrep -u "$uid" || true); do kill -KILL "$pid" 2>/dev/null || true; done
	sleep 0.2
	userdel -r "$name" 2>/dev/null || userdel "$name"
	rm -rf "$run"
	if [ -e /run/.envd-made-run-user ]; then rmdir /run/user 2>/dev/null || true; rm -f /run/.envd-made-run-user; fi
	;;
*)
	die "usage: $0 up NAME UID | down NAME"
	;;
esac
