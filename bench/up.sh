#!/usr/bin/env bash
# Measures `envd up` with the image already built: the time from the command
# to an environment that answers ssh, recreated each run (--force), N runs.
# Writes docs/benchmarks-up.md. Needs `make setup` first. Usage: bench/up.sh [N]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${1:-5}
work=$(mktemp -d /tmp/envd-bench-up.XXXXXX)
export XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/data XDG_CACHE_HOME=$work/cache HOME=$work/home
mkdir -p "$HOME" "$work/proj"
envd=$repo/bin/envd
cleanup() {
	(cd "$work/proj" && "$envd" destroy >/dev/null 2>&1) || true
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

times=()
for i in $(seq "$runs"); do
	start=$(date +%s.%N)
	"$envd" up -d --force --progress quiet >/dev/null
	end=$(date +%s.%N)
	times+=("$(awk "BEGIN{print $end - $start}")")
done
start=$(date +%s.%N)
"$envd" up -d >/dev/null # already running: says so and how to reach it
running=$(awk "BEGIN{print $(date +%s.%N) - $start}")

sorted=$(printf '%s\n' "${times[@]}" | sort -n)
min=$(echo "$sorted" | head -1)
median=$(echo "$sorted" | sed -n "$(((runs + 1) / 2))p")
{
	echo "# envd up: time to ssh-ready with the image built"
	echo
	echo "Measured by \`bench/up.sh $runs\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), $(/usr/bin/docker version --format 'Docker {{.Server.Version}}')."
	echo "Each run: \`envd up -d --force\` (remove the running container, start a new one, wait until a real ssh login"
	echo "runs a command and the daemon has started, write the ssh config), with an environment that has one daemon."
	echo
	echo "| case | min | median | runs |"
	echo "|---|---|---|---|"
	printf '| up, image built, container recreated | %.2f s | %.2f s | %s |\n' "$min" "$median" "$runs"
	printf '| up, already running | %.2f s | | 1 |\n' "$running"
	echo
	echo "Target: under 2 s."
} >"$repo/docs/benchmarks-up.md"
cat "$repo/docs/benchmarks-up.md"
