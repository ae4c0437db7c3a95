#!/usr/bin/env bash
# Brings up, on this machine and without Docker Hub, everything envd's tests (and an offline user) need:
#   - Docker Engine (Debian's docker.io) and runc;
#   - a docker.io registry mirror on 127.0.0.1:5000 (Debian's docker-registry), seeded with
#     library/debian:bookworm (and :12) built by debootstrap;
#   - bin/envd (also its own buildkitd, of the BuildKit go.mod pins), bin/envd-agent and bin/envd-handover
#     (make build).
# Every step is skipped when already satisfied, so a second run only checks and takes seconds.
# Daemons that already answer (e.g. a dockerd started by hand) are reused, never restarted.
#
# Usage (as root):
#   scripts/setup.sh                 set up what is missing
#   scripts/setup.sh --stop [NAME]   stop the daemons this script started (dockerd, registry), found by their
#                                    pid files; with NAMEs only those. Nothing else is touched.
#
# Environment:
#   ENVD_INFRA_STATE    default /var/lib/envd-infra: pid files, logs, registry config and registry storage.
#   ENVD_INFRA_CACHE    default /var/cache/envd-infra: the debootstrap rootfs tarball, so debootstrap runs once,
#                       and wheels/: the uv and pip wheels the tests' package indexes serve.
#   ENVD_INFRA_MIRROR   default 127.0.0.1:5000: where the mirror listens (another port only to test this script,
#                       or when 5000 is taken: envd's tests expect 5000).
#   ENVD_INFRA_STARTED  optional file; "NAME PID" is appended for each daemon started by this run (.ci/run uses it
#                       to stop exactly those).
set -euo pipefail

STATE=${ENVD_INFRA_STATE:-/var/lib/envd-infra}
CACHE=${ENVD_INFRA_CACHE:-/var/cache/envd-infra}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIRROR=${ENVD_INFRA_MIRROR:-127.0.0.1:5000}
# The first docker on PATH may be a newer client that does not match Debian's daemon; use Debian's.
DOCKER=/usr/bin/docker
# Podman 4.3 and what rootless Podman needs (uidmap; slirp4netns and fuse-overlayfs where /dev/net/tun and
# /dev/fuse are usable). runc is listed, and installed with podman, so that apt does not pick crun for podman's
# "crun | runc": crun refuses a cgroup v1 hybrid host, where nothing would run.
PACKAGES=(docker.io runc docker-registry debootstrap curl python3-pip podman uidmap slirp4netns fuse-overlayfs)
ROOTFS_TAR=$CACHE/debian-bookworm-rootfs.tar

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# alive PID COMM: the process exists and is the program we expect (guards against a reused pid).
alive() { [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]; }

# running PID: the process exists and is not a zombie (it may still be exec'ing, so its name is not checked).
running() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

pidfile_pid() { cat "$STATE/$1.pid" 2>/dev/null || true; }

# start_daemon NAME CMD...: run CMD detached (own session, so it outlives this shell), log and pid under $STATE.
start_daemon() {
	local name=$1
	shift
	setsid "$@" >>"$STATE/$name.log" 2>&1 </dev/null &
	echo $! >"$STATE/$name.pid"
	if [ -n "${ENVD_INFRA_STARTED:-}" ]; then
		echo "$name $!" >>"$ENVD_INFRA_STARTED"
	fi
}

# wait_started NAME COMM SECONDS CMD...: poll CMD until it succeeds; fail early if the daemon exited
# (e.g. its port is taken), showing the end of its log.
wait_started() {
	local name=$1 comm=$2 deadline=$((SECONDS + $3))
	shift 3
	until "$@" >/dev/null 2>&1; do
		if ! running "$(pidfile_pid "$name")"; then
			tail -n 5 "$STATE/$name.log" >&2 || true
			die "$name exited during start-up; log: $STATE/$name.log"
		fi
		[ "$SECONDS" -lt "$deadline" ] || die "$name did not answer within $3 s; log: $STATE/$name.log"
		sleep 0.5
	done
	# setsid execs in place when not a process-group leader, so the pid we recorded is the daemon's.
	alive "$(pidfile_pid "$name")" "$comm" || log "warning: $STATE/$name.pid does not point at $comm; --stop cannot stop it"
}

# stop_daemon NAME COMM: stop the process recorded in NAME.pid, if it is still the one we started.
stop_daemon() {
	local name=$1 comm=$2 pid
	pid=$(pidfile_pid "$name")
	if ! alive "$pid" "$comm"; then
		rm -f "$STATE/$name.pid"
		log "$name: not running from this script"
		return
	fi
	kill -TERM "$pid"
	# dockerd may wait up to 15 s per container before it exits.
	local deadline=$((SECONDS + 40))
	while alive "$pid" "$comm" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
	if alive "$pid" "$comm"; then
		kill -KILL "$pid"
		log "$name: killed pid $pid (did not stop in 40 s)"
	else
		log "$name: stopped pid $pid"
	fi
	rm -f "$STATE/$name.pid"
}

comm_of() {
	case $1 in
	dockerd) echo dockerd ;;
	registry) echo docker-registry ;;
	*) die "unknown daemon '$1' (known: dockerd, registry)" ;;
	esac
}

if [ "${1:-}" = "--stop" ]; then
	shift
	names=("$@")
	[ ${#names[@]} -gt 0 ] || names=(registry dockerd)
	for name in "${names[@]}"; do stop_daemon "$name" "$(comm_of "$name")"; done
	exit 0
fi
[ $# -eq 0 ] || die "usage: $0 [--stop [NAME...]]"
[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, dockerd and debootstrap need it)"
mkdir -p "$STATE" "$CACHE"

# --- Debian packages -------------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
	log "packages: all installed"
else
	log "packages: installing ${missing[*]}"
	# Keep package scripts from starting services: the packaged registry would take :5000 with htpasswd auth.
	added_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		added_policy=1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	[ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

# --- Docker Engine ---------------------------------------------------------------------------------------
if $DOCKER info >/dev/null 2>&1; then
	log "docker: daemon already answers"
else
	log "docker: starting dockerd (log $STATE/dockerd.log)"
	# The mirror flag lets `docker pull debian:...` work offline too; it is checked per pull, so order is free.
	start_daemon dockerd dockerd --registry-mirror "http://$MIRROR"
	wait_started dockerd dockerd 60 $DOCKER info
fi

# --- Registry mirror for docker.io -----------------------------------------------------------------------
registry_up() { curl -fsS -o /dev/null "http://$MIRROR/v2/" 2>/dev/null; }
if registry_up; then
	log "mirror: registry already answers on $MIRROR"
else
	log "mirror: starting docker-registry on $MIRROR (storage $STATE/registry)"
	mkdir -p "$STATE/registry"
	# Our own config: the packaged one asks for htpasswd auth and listens on all interfaces.
	cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $MIRROR
  secret: envd-local-mirror  # only signs upload state; without it the registry warns at every start
EOF
	start_daemon registry docker-registry serve "$STATE/registry.yml"
	wait_started registry docker-registry 20 registry_up
fi

# --- Seed the mirror with debian:bookworm ----------------------------------------------------------------
has_manifest() {
	curl -fsS -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$MIRROR/v2/library/debian/manifests/$1" 2>/dev/null
}
image_present() { $DOCKER image inspect "$1" >/dev/null 2>&1; }

if has_manifest bookworm && has_manifest 12; then
	log "mirror: library/debian:bookworm and :12 present"
else
	if ! image_present "$MIRROR/library/debian:bookworm"; then
		if [ -f "$ROOTFS_TAR" ]; then
			log "base: using cached rootfs $ROOTFS_TAR"
		else
			log "base: debootstrap --variant=minbase bookworm (about 40 s)"
			rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
			if ! debootstrap --variant=minbase bookworm "$rootfs" >"$STATE/debootstrap.log" 2>&1; then
				# --one-file-system: a failed debootstrap may leave /proc mounted inside.
				rm -rf --one-file-system "$rootfs" || true
				die "debootstrap failed; see $STATE/debootstrap.log"
			fi
			# Downloaded .debs are not part of an image.
			rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
			tar --numeric-owner -C "$rootfs" -cf "$ROOTFS_TAR.tmp" .
			mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
			rm -rf "$rootfs"
		fi
		log "base: docker import"
		$DOCKER import \
			--change 'CMD ["bash"]' \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			"$ROOTFS_TAR" "$MIRROR/library/debian:bookworm" >/dev/null
	fi
	$DOCKER tag "$MIRROR/library/debian:bookworm" "$MIRROR/library/debian:12"
	log "mirror: pushing library/debian:bookworm and :12"
	$DOCKER push -q "$MIRROR/library/debian:bookworm" >/dev/null
	$DOCKER push -q "$MIRROR/library/debian:12" >/dev/null
fi

# Docker Hub is unreachable, so `FROM debian:bookworm` in a plain Dockerfile needs the local tag.
if image_present debian:bookworm; then
	log "docker: debian:bookworm tagged locally"
else
	image_present "$MIRROR/library/debian:bookworm" || $DOCKER pull -q "$MIRROR/library/debian:bookworm" >/dev/null
	$DOCKER tag "$MIRROR/library/debian:bookworm" debian:bookworm
	$DOCKER tag "$MIRROR/library/debian:bookworm" debian:12
	log "docker: tagged debian:bookworm and debian:12"
fi

# --- Tool wheels ----------------------------------------------------------------------------------------
# envd resolves and installs Python packages with uv, fetched from the environment's package index (by envd on
# the host: the static musllinux wheel; else by pip in a build step: the wheel for the image); the tests' local
# indexes serve these copies (the version envd pins). The benchmark's Dockerfiles upgrade pip from the index.
UV_VERSION=$(sed -n 's/^const UVVersion = "\(.*\)"$/\1/p' "$REPO/internal/compile/installer.go")
[ -n "$UV_VERSION" ] || die "cannot read UVVersion from internal/compile/installer.go"
PIP_VERSION=26.3
WHEELS=$CACHE/wheels
mkdir -p "$WHEELS"
# requirement, platform asked for, what the file name then holds
for want in "uv==$UV_VERSION manylinux_2_17_x86_64 manylinux" "uv==$UV_VERSION musllinux_1_1_x86_64 musllinux" \
	"pip==$PIP_VERSION manylinux_2_17_x86_64 any"; do
	read -r req platform tag <<<"$want"
	name=${req%%==*} version=${req#*==}
	if compgen -G "$WHEELS/$name-$version-*$tag*.whl" >/dev/null; then
		log "wheels: $name $version ($platform) present in $WHEELS"
		continue
	fi
	log "wheels: downloading $name $version ($platform) into $WHEELS"
	find "$WHEELS" -name "$name-*.whl" ! -name "$name-$version-*" -delete # older versions
	python3 -m pip download -q --no-deps --only-binary=:all: --platform "$platform" \
		--python-version 3.11 -d "$WHEELS" "$req" || die "could not download the $name $version wheel"
done

# --- Binaries --------------------------------------------------------------------------------------------
cd "$REPO"
command -v go >/dev/null || die "go is not on PATH"
# go build relinks only when an input changed, so a warm run takes seconds.
log "build: bin/envd, bin/envd-agent, bin/envd-handover (a few minutes on a cold Go build cache)"
make -s build

# --- Summary ---------------------------------------------------------------------------------------------
daemon_line() { # NAME COMM
	local pid
	pid=$(pidfile_pid "$1")
	if alive "$pid" "$2"; then
		echo "started by setup.sh, pid $pid, log $STATE/$1.log"
	else
		echo "not started by setup.sh, left alone by --stop"
	fi
}
server_version=$($DOCKER version --format '{{.Server.Version}}' 2>/dev/null || echo '?')
binaries=
for b in "$REPO"/bin/envd "$REPO"/bin/envd-agent "$REPO"/bin/envd-handover; do
	[ ! -x "$b" ] || binaries+="$b "
done
binaries=${binaries% }
cat <<EOF
setup: ready
  docker    dockerd $server_version via $DOCKER ($(daemon_line dockerd dockerd))
  mirror    http://$MIRROR, docker.io mirror with library/debian:bookworm and :12 ($(daemon_line registry docker-registry))
  binaries  $binaries
  state     $STATE   cache $CACHE   (stop with: scripts/setup.sh --stop)
EOF
