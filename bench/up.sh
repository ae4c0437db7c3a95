#!/usr/bin/env bash
# Measures `envd up` with the image already built: the time from the command
# to an environment that answers ssh, recreated each run (--force), N runs,
# on the local Docker and, when a cluster is given, on Kubernetes (the image
# in the registry, the project's claim kept), beside a first up on the
# cluster that includes the push and the node's pull, and on the SSH test
# server when it is up (scripts/ssh-host.sh up): a server's Docker reached
# with OpenSSH, where the image is built by envd's builder container there,
# and, when podman is installed, on rootless Podman as a throwaway user
# (scripts/podman-user.sh), built by envd's builder container in it.
# Writes docs/benchmarks-up.md. Needs `make setup` first (and for the cluster
# scripts/kube-cluster.sh up). Usage: [ENVD_KUBECONFIG=FILE] bench/up.sh [N]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${1:-5}
kubeconfig=${ENVD_KUBECONFIG:-}
sshhost_env=/var/lib/envd-sshhost/env
[ -f "$sshhost_env" ] || sshhost_env=
podman_user=envd-bench-podman podman_uid=4324
command -v podman >/dev/null || podman_user=
as=() # the command prefix that runs envd as the Podman user, in its part
work=$(mktemp -d /tmp/envd-bench-up.XXXXXX)
export XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/data XDG_CACHE_HOME=$work/cache HOME=$work/home
mkdir -p "$HOME" "$work/proj"
envd=$repo/bin/envd
cleanup() {
	(cd "$work/proj" && "$envd" destroy >/dev/null 2>&1) || true
	if [ -n "$kubeconfig" ]; then
		(cd "$work/proj" && "$envd" --context bench-kube destroy >/dev/null 2>&1) || true
	fi
	if [ -n "$sshhost_env" ]; then
		(cd "$work/proj" && "$envd" --context bench-ssh destroy >/dev/null 2>&1) || true
		"$envd" --context bench-ssh bootstrap --stop --rm >/dev/null 2>&1 || true
	fi
	if [ ${#as[@]} -gt 0 ]; then
		(cd "$pmproj" && "${as[@]}" "$envd" destroy >/dev/null 2>&1) || true
		"${as[@]}" "$envd" bootstrap --stop --rm >/dev/null 2>&1 || true
	fi
	if [ -n "$podman_user" ]; then "$repo/scripts/podman-user.sh" down "$podman_user" || true; fi
	"$envd" bootstrap --stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/proj/build.envd" <<'ENVD'
def build():
    base(os="debian12", language="python3")
    runtime.expose(envd_port=8000, service="web")
    runtime.daemon(commands=[["python3", "-m", "http.server", "8000"]])
ENVD
cd "$work/proj"
"$envd" bootstrap --registry-mirror http://127.0.0.1:5000 >/dev/null
"$envd" up -d --progress quiet >/dev/null # builds the image once

now() { date +%s.%N; }
since() { awk "BEGIN{print $(now) - $1}"; }
# measure CONTEXT MODE: `envd up -d` $runs times in CONTEXT ("" the default,
# the local Docker), MODE force (--force: the running one is removed first)
# or after-down (an untimed `envd down` before each); prints "min median".
measure() {
	local ctx=() times=() start sorted
	if [ -n "$1" ]; then ctx=(--context "$1"); fi
	for _ in $(seq "$runs"); do
		local up=(up -d --progress quiet)
		if [ "$2" = force ]; then up+=(--force); else "${as[@]}" "$envd" "${ctx[@]}" down >/dev/null; fi
		start=$(now)
		"${as[@]}" "$envd" "${ctx[@]}" "${up[@]}" >/dev/null
		times+=("$(since "$start")")
	done
	sorted=$(printf '%s\n' "${times[@]}" | sort -n)
	echo "$(echo "$sorted" | head -1) $(echo "$sorted" | sed -n "$(((runs + 1) / 2))p")"
}

read -r dmin dmed < <(measure "" force)
read -r ddmin ddmed < <(measure "" after-down)
start=$(now)
"$envd" up -d >/dev/null # already running: says so and how to reach it
running=$(since "$start")

# Names are one per machine: the environment leaves each runtime before the next one's measurements.
"$envd" down >/dev/null
if [ -n "$kubeconfig" ]; then
	"$envd" context create bench-kube --runtime kubernetes --kubeconfig "$kubeconfig" --registry 127.0.0.1:5000/envd-bench >/dev/null
	# The first up on the cluster: export and push (the layers are built),
	# claim, pod, the node's pull, the copy of the project.
	start=$(now)
	"$envd" --context bench-kube up -d --progress quiet >/dev/null
	kfirst=$(since "$start")
	read -r kmin kmed < <(measure bench-kube force)
	read -r kdmin kdmed < <(measure bench-kube after-down)
	"$envd" --context bench-kube down >/dev/null
fi

if [ -n "$sshhost_env" ]; then
	# OpenSSH reads the passwd entry's ~/.ssh, not $HOME's: envd is told the config, as a user can tell it.
	mkdir -p "$HOME/.ssh"
	(
		# shellcheck disable=SC1090 # written by scripts/ssh-host.sh
		. "$sshhost_env"
		cat "$ENVD_SSHHOST_SSH_CONFIG" >>"$HOME/.ssh/config"
		echo "$ENVD_SSHHOST_MIRROR" >"$work/ssh-mirror"
	)
	export ENVD_SSH_COMMAND="ssh -F $HOME/.ssh/config"
	"$envd" context create bench-ssh --runtime ssh://envd-sshhost >/dev/null
	# The first up on the server: its builder container, a build there (its own cache, cold), the hand-over
	# there, the project copy.
	start=$(now)
	"$envd" --context bench-ssh up -d --progress quiet --registry-mirror "http://$(cat "$work/ssh-mirror")" >/dev/null
	sfirst=$(since "$start")
	read -r smin smed < <(measure bench-ssh force)
	read -r sdmin sdmed < <(measure bench-ssh after-down)
	"$envd" --context bench-ssh down >/dev/null
fi

if [ -n "$podman_user" ]; then
	"$repo/scripts/podman-user.sh" down "$podman_user" # left by a killed run
	"$repo/scripts/podman-user.sh" up "$podman_user" "$podman_uid" >/dev/null
	pmhome=$(getent passwd "$podman_user" | cut -d: -f6)
	pmproj=$pmhome/proj
	mkdir -p "$pmproj"
	cp "$work/proj/build.envd" "$pmproj/"
	chown -R "$podman_uid:users" "$pmproj"
	as=(setpriv --reuid="$podman_uid" --regid=users --init-groups -- env -i PATH=/usr/local/bin:/usr/bin:/bin
		HOME="$pmhome" USER="$podman_user" XDG_RUNTIME_DIR="/run/user/$podman_uid")
	cd "$pmproj"
	"${as[@]}" "$envd" context create bench-podman --runtime podman --use >/dev/null
	# The first up on Podman: its builder container (the builder image loaded into Podman), a cold build in
	# it, the hand-over into Podman's store.
	start=$(now)
	"${as[@]}" "$envd" up -d --progress quiet --registry-mirror http://127.0.0.1:5000 >/dev/null
	pfirst=$(since "$start")
	read -r pmin pmed < <(measure "" force)
	read -r pdmin pdmed < <(measure "" after-down)
	pversion=$(podman --version)
fi

{
	echo "# envd up: time to ssh-ready with the image built"
	echo
	echo "Measured by \`$( [ -n "$kubeconfig" ] && echo "ENVD_KUBECONFIG=... ")bench/up.sh $runs\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), $(/usr/bin/docker version --format 'Docker {{.Server.Version}}')."
	echo "Each run is one \`envd up -d\`: start the environment, wait until a real ssh login runs a command and the daemon"
	echo "has started, write the ssh config; the environment has one daemon. \"recreated\" is \`up --force\` over a running"
	echo "one (removing it is part of the time); \"after down\" is an up after an untimed \`envd down\`."
	echo
	echo "| case | min | median | runs |"
	echo "|---|---|---|---|"
	printf '| Docker: up after down, image built | %.2f s | %.2f s | %s |\n' "$ddmin" "$ddmed" "$runs"
	printf '| Docker: up --force, container recreated | %.2f s | %.2f s | %s |\n' "$dmin" "$dmed" "$runs"
	printf '| Docker: up, already running | %.2f s | | 1 |\n' "$running"
	if [ -n "$kubeconfig" ]; then
		printf '| Kubernetes: first up of this run (export + push of what the registry lacks, claim, pod, pull, project copy) | %.2f s | | 1 |\n' "$kfirst"
		printf '| Kubernetes: up after down, image in the registry, claim kept | %.2f s | %.2f s | %s |\n' "$kdmin" "$kdmed" "$runs"
		printf '| Kubernetes: up --force, pod recreated | %.2f s | %.2f s | %s |\n' "$kmin" "$kmed" "$runs"
		echo
		printf 'Kubernetes / Docker by the median: %.1fx after down, %.1fx recreated.\n' "$(awk "BEGIN{print $kdmed / $ddmed}")" "$(awk "BEGIN{print $kmed / $dmed}")"
		echo
		echo "The cluster is scripts/kube-cluster.sh's single node on this machine and the registry is the one on"
		echo "127.0.0.1:5000; over a real network the push and the node's pull of a first up take what the image's new"
		echo "layers take to move, while the recreated up moves no image at all (the node has it)."
	fi
	if [ -n "$sshhost_env" ]; then
		echo
		echo "| SSH server (scripts/ssh-host.sh: its own sshd and dockerd in a network namespace) | min | median | runs |"
		echo "|---|---|---|---|"
		printf '| SSH: first up of this run (builder container there, a build there on the cache it kept, hand-over there, project copy) | %.2f s | | 1 |\n' "$sfirst"
		printf '| SSH: up after down, image built, project volume kept | %.2f s | %.2f s | %s |\n' "$sdmin" "$sdmed" "$runs"
		printf '| SSH: up --force, container recreated | %.2f s | %.2f s | %s |\n' "$smin" "$smed" "$runs"
		echo
		printf 'SSH / Docker by the median: %.1fx after down, %.1fx recreated. Every ssh session is a new OpenSSH\n' "$(awk "BEGIN{print $sdmed / $ddmed}")" "$(awk "BEGIN{print $smed / $dmed}")"
		echo "connection (no ControlMaster): the Docker API, each port envd dials and the project copy each open one."
	fi
	if [ -n "$podman_user" ]; then
		echo
		echo "| Podman ($pversion, rootless, as a user with no Docker; scripts/podman-user.sh) | min | median | runs |"
		echo "|---|---|---|---|"
		printf '| Podman: first up of a new user (builder image into Podman, builder container, a cold build, hand-over into Podman) | %.2f s | | 1 |\n' "$pfirst"
		printf '| Podman: up after down, image built | %.2f s | %.2f s | %s |\n' "$pdmin" "$pdmed" "$runs"
		printf '| Podman: up --force, container recreated | %.2f s | %.2f s | %s |\n' "$pmin" "$pmed" "$runs"
		echo
		printf 'Podman / Docker by the median: %.1fx after down, %.1fx recreated. On this machine rootless Podman\n' "$(awk "BEGIN{print $pdmed / $ddmed}")" "$(awk "BEGIN{print $pmed / $dmed}")"
		echo "cannot publish ports (/dev/net/tun is root-only), so the environment shares the host's network and envd"
		echo "chose its ports; its storage driver is overlay."
	fi
	echo
	echo "Targets: under 2 s on Docker, under 3 s on Kubernetes."
} >"$repo/docs/benchmarks-up.md"
cat "$repo/docs/benchmarks-up.md"
