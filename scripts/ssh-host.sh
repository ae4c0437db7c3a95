#!/usr/bin/env bash
# A second "server" on this machine, for testing envd's SSH remote runtime (ssh://USER@HOST): an OpenSSH server and
# a dockerd of their own in a network namespace and a mount namespace of their own, reached from the host over a
# veth pair, the way a remote Docker host is reached over `ssh HOST docker system dial-stdio` and `ssh -W`.
#
#   network    netns envd-sshhost; veth envd-sshh0 10.213.7.1/24 (root namespace) <-> envd-sshh1 10.213.7.2/25 (in
#              it: 10.213.7.128/25 is for its Docker, whose bridge and pools must overlap no route there), lo up,
#              default route via 10.213.7.1: the server reaches what this machine reaches (Debian's packages, the
#              package indexes), as a real server has its uplink, through three iptables rules in the root namespace
#              (MASQUERADE and FORWARD accept, commented "envd-sshhost", removed by down; ip_forward is already on
#              wherever Docker runs, and down restores it if up had to turn it on). Inside, dockerd's rules and
#              ip_forward are the netns's own.
#   filesystem a mount namespace (and UTS: hostname envd-sshhost) held by a `sleep` process: fresh tmpfs over /tmp,
#              /work, /home, /var/log, /var/lib/docker and /dev/shm (the client's project directories, the repo and
#              the host's Docker data are not there, so a bind mount of a client path fails as on a real server), a
#              fresh /run (so /run/docker.sock = /var/run/docker.sock is the server's dockerd) and a sysfs of the netns.
#   dockerd    data root /var/lib/envd-sshhost/docker, exec root /run/envd-sshhost-docker, socket
#              unix:///run/docker.sock (group docker), cgroup parent /envd-sshhost, storage driver as the host's,
#              default bridge envd-sshh-br 10.213.7.129/26 inside the netns (user networks from 10.213.7.192/26),
#              its own /etc/docker, mirror http://10.213.7.1:5000, log
#              /var/lib/envd-sshhost/dockerd.log.
#   sshd       on 10.213.7.2:22, config and host key under /var/lib/envd-sshhost/sshd, keys only, TCP forwarding on,
#              log /var/lib/envd-sshhost/sshd.log; user envd-remote (UID 3456, own group, in docker, /bin/bash, home
#              /var/lib/envd-sshhost/home/envd-remote, visible on the server although /home is hidden there).
#   docker.io  a socat relay (root namespace) from 10.213.7.1:5000 to the registry mirror on 127.0.0.1:5000
#              (scripts/setup.sh's): the server's docker.io, for its dockerd and for builders there.
#   client     /var/lib/envd-sshhost/client/: id_ed25519 (0600, root's: copy it for another user), known_hosts,
#              ssh_config with `Host envd-sshhost` (ssh -F FILE envd-sshhost CMD). ssh reads ~/.ssh/config from
#              the passwd entry's home, not $HOME: for `DOCKER_HOST=ssh://envd-sshhost docker ...` put on PATH an
#              `ssh` that execs /usr/bin/ssh -F FILE "$@".
#
# Usage (as root):
#   scripts/ssh-host.sh up              start (a few seconds; the first time also apt-get install openssh-server);
#                                       when already up, nothing but print the env file; leftovers of a crashed
#                                       run are cleaned first. Prints the env file last.
#   scripts/ssh-host.sh down [--keep-data]
#                                       stop the server's containers, dockerd, sshd and every process left in its
#                                       namespaces or cgroups, unmount, delete the netns and veth, remove the user
#                                       and everything under /var/lib/envd-sshhost (with --keep-data: not docker/)
#   scripts/ssh-host.sh status          say whether it is up; exit 0 if it is, 1 if not
#
# The env file /var/lib/envd-sshhost/env holds KEY='VALUE' lines only (no comments; no value holds a quote):
#   ENVD_SSHHOST_ADDR, _PORT        10.213.7.2, 22: where sshd listens
#   ENVD_SSHHOST_GATEWAY            10.213.7.1: the host as the server sees it (tests run forwarders listening there)
#   ENVD_SSHHOST_USER, _UID         envd-remote, 3456
#   ENVD_SSHHOST_NAME               envd-sshhost: the Host entry of the ssh_config
#   ENVD_SSHHOST_KEY, _KNOWN_HOSTS, _SSH_CONFIG   the client files
#   ENVD_SSHHOST_HOME               the remote user's home
#   ENVD_SSHHOST_MIRROR             10.213.7.1:5000: the registry mirror the server's dockerd is configured with
#   ENVD_SSHHOST_PIDS               "DOCKERD SSHD HOLDER"; also ENVD_SSHHOST_DOCKERD_PID, _SSHD_PID, _HOLDER_PID
#   ENVD_SSHHOST_NSENTER            the prefix that runs a command on the server as root (its mount, UTS and net
#                                   namespaces), e.g. $ENVD_SSHHOST_NSENTER docker ps -a (the command keeps the
#                                   caller's environment: unset DOCKER_HOST for it)
set -euo pipefail

STATE=/var/lib/envd-sshhost
NETNS=envd-sshhost
VETH_HOST=envd-sshh0
VETH_NS=envd-sshh1
GATEWAY=10.213.7.1
ADDR=10.213.7.2
PREFIX=24    # the host side's
NS_PREFIX=25 # the server's: 10.213.7.128/25 is its Docker's (a /24 there would overlap every pool dockerd may use)
PORT=22
BRIDGE=envd-sshh-br # dockerd's default bridge, inside the netns
BRIDGE_ADDR=10.213.7.129/26
POOL=10.213.7.192/26
MIRROR=10.213.7.1:5000
RUSER=envd-remote
RUID=3456
RHOME=$STATE/home/$RUSER
HOSTNAME_NS=envd-sshhost
CGROUP_PARENT=/envd-sshhost
EXEC_ROOT=/run/envd-sshhost-docker
DOCKER_PIDFILE=/run/envd-sshhost-docker.pid
SSHD_PIDFILE=/run/sshd.pid
CLIENT=$STATE/client
SSHD_DIR=$STATE/sshd
RUNDIR=$STATE/run # our pid files and namespace ids
ENV_FILE=$STATE/env
# Daemons get a clean environment: the server does not inherit the client's variables.
CLEAN_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
# Debian's docker CLI, matching the daemon (the first docker on PATH may be a newer client).
DOCKER=/usr/bin/docker

# shellcheck source=lib/run-netns.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/run-netns.sh"

log() { printf 'ssh-host: %s\n' "$*" >&2; }
die() { printf 'ssh-host: error: %s\n' "$*" >&2; exit 1; }

T_PHASE=
phase_start() { T_PHASE=$EPOCHREALTIME; }
phase_end() { # NAME: how long since phase_start
	local now=$EPOCHREALTIME
	log "$(printf '%-9s %6.2fs' "$1" "$(awk -v a="$T_PHASE" -v b="$now" 'BEGIN { print b - a }')")"
}

# --- processes and namespaces --------------------------------------------------------------------------------

running() { # PID: exists and is not a zombie
	local st
	[ -n "$1" ] || return 1
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}
comm_is() { [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]; }
ns_of() { readlink "/proc/$1/ns/$2" 2>/dev/null || true; } # PID TYPE -> e.g. mnt:[4026532301]
saved_ns() { cat "$RUNDIR/$1.ns" 2>/dev/null || true; }        # TYPE: recorded by up
pid_file() { cat "$RUNDIR/$1.pid" 2>/dev/null || true; }

# our_pid NAME COMM: the recorded pid if it is still that program inside the server's mount namespace.
our_pid() {
	local pid mnt
	pid=$(pid_file "$1")
	mnt=$(saved_ns mnt)
	if running "$pid" && comm_is "$pid" "$2" && [ -n "$mnt" ] && [ "$(ns_of "$pid" mnt)" = "$mnt" ]; then
		echo "$pid"
	fi
}
holder_pid() { our_pid holder sleep; }
dockerd_pid() { our_pid dockerd dockerd; }
sshd_pid() { our_pid sshd sshd; }

netns_exists() { [ -e "/run/netns/$NETNS" ]; }
netns_id() { if netns_exists; then stat -L -c 'net:[%i]' "/run/netns/$NETNS" 2>/dev/null || true; fi; }

# in_ns CMD...: run CMD on the server, as root (needs the holder).
in_ns() {
	local h
	h=$(holder_pid)
	[ -n "$h" ] || die "the server's namespace holder is not running"
	nsenter --mount="/proc/$h/ns/mnt" --uts="/proc/$h/ns/uts" --net="/proc/$h/ns/net" -- "$@"
}
rdocker() { in_ns "${CLEAN_ENV[@]}" "$DOCKER" -H unix:///run/docker.sock "$@"; }

# start NAME CMD...: run CMD detached (own session, clean environment), its output appended to NAME.log.
# setsid execs in place (a script's background job is no group leader), so $! is the daemon itself.
STARTED=
start() {
	local name=$1
	shift
	setsid "${CLEAN_ENV[@]}" "$@" >>"$STATE/$name.log" 2>&1 </dev/null &
	STARTED=$!
	echo "$STARTED" >"$RUNDIR/$name.pid"
}

# wait_gone SECONDS PID...: wait until none of PIDs runs; 1 if some still do.
wait_gone() {
	local deadline=$((SECONDS + $1)) p left
	shift
	while :; do
		left=
		for p in "$@"; do running "$p" && left=1; done
		[ -z "$left" ] && return 0
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# stop_pids SECONDS PID...: TERM, wait, then KILL what is left.
stop_pids() {
	local secs=$1 p
	shift
	[ $# -gt 0 ] || return 0
	kill -TERM "$@" 2>/dev/null || true
	wait_gone "$secs" "$@" && return 0
	for p in "$@"; do
		if running "$p"; then
			log "pid $p ($(cat "/proc/$p/comm" 2>/dev/null)) did not stop in ${secs}s: killing it"
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	wait_gone 10 "$@" || log "warning: some of pids $* are still there"
}

# ns_pids [EXCEPT]: every process in the server's mount namespace or netns, or in its cgroups, but EXCEPT.
ns_pids() {
	local except=${1:-} mnt net p d
	mnt=$(saved_ns mnt)
	net=$(netns_id)
	[ -n "$net" ] || net=$(saved_ns net)
	{
		for d in /proc/[0-9]*; do
			p=${d#/proc/}
			[ "$p" != "$except" ] && [ "$p" != "$$" ] || continue
			if [ -n "$mnt" ] && [ "$(ns_of "$p" mnt)" = "$mnt" ]; then
				echo "$p"
			elif [ -n "$net" ] && [ "$(ns_of "$p" net)" = "$net" ]; then
				echo "$p"
			fi
		done
		for d in /sys/fs/cgroup/*"$CGROUP_PARENT"; do
			[ -d "$d" ] || continue
			find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true
		done
	} | sort -un | grep -vx "${except:-x}" || true
}

# --- host side: package, user, network -------------------------------------------------------------------------

install_sshd() {
	if [ -x /usr/sbin/sshd ] && ! command -v socat >/dev/null; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends socat >/dev/null
	fi
	[ -x /usr/sbin/sshd ] && return
	log "package: installing openssh-server (its ssh service is kept from starting, and disabled)"
	local added_policy=
	# invoke-rc.d asks policy-rc.d: 101 = do not start services (the packaged sshd would listen on the host's :22).
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		added_policy=1
	fi
	apt-get update -qq
	# NEEDRESTART_SUSPEND: needrestart, where installed, must not restart the host's daemons after the install.
	DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq --no-install-recommends \
		openssh-server socat >/dev/null
	[ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
	# Keep the packaged service off for good: Debian's init script and ssh.service both skip when this file exists.
	touch /etc/ssh/sshd_not_to_be_run
	if command -v systemctl >/dev/null; then
		systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
		if [ -d /run/systemd/system ]; then # systemd is running (not so on this machine kind: PID 1 is no init)
			systemctl stop ssh.service ssh.socket >/dev/null 2>&1 || true
		fi
	fi
	if command -v update-rc.d >/dev/null; then update-rc.d ssh disable >/dev/null 2>&1 || true; fi
	[ -x /usr/sbin/sshd ] || die "openssh-server installed but /usr/sbin/sshd is missing"
}

make_user() {
	local pw gid
	getent group docker >/dev/null || die "no group docker: install Docker first (scripts/setup.sh)"
	pw=$(getent passwd "$RUID" | cut -d: -f1 || true)
	[ -z "$pw" ] || [ "$pw" = "$RUSER" ] || die "UID $RUID is taken by user $pw"
	if ! getent group "$RUSER" >/dev/null; then
		gid=$RUID
		getent group "$gid" >/dev/null && gid= # take the next free GID
		groupadd ${gid:+-g "$gid"} "$RUSER"
	fi
	mkdir -p "$STATE/home"
	chmod 0755 "$STATE" "$STATE/home"
	useradd -u "$RUID" -g "$RUSER" -G docker -d "$RHOME" -m -s /bin/bash -c "envd ssh test server" "$RUSER"
	# '*': no password, yet not locked ('!'), which sshd without PAM would refuse even for a key.
	usermod -p '*' "$RUSER"
	install -d -m 0700 -o "$RUSER" -g "$RUSER" "$RHOME/.ssh"
	install -m 0600 -o "$RUSER" -g "$RUSER" "$CLIENT/id_ed25519.pub" "$RHOME/.ssh/authorized_keys"
}

make_keys() {
	install -d -m 0755 "$CLIENT" "$SSHD_DIR"
	rm -f "$SSHD_DIR"/ssh_host_ed25519_key* "$CLIENT"/id_ed25519*
	ssh-keygen -q -t ed25519 -N '' -C "envd-sshhost host key" -f "$SSHD_DIR/ssh_host_ed25519_key"
	ssh-keygen -q -t ed25519 -N '' -C "envd-sshhost client" -f "$CLIENT/id_ed25519"
	chmod 0600 "$CLIENT/id_ed25519" "$SSHD_DIR/ssh_host_ed25519_key"
	printf '%s %s\n' "$ADDR" "$(cut -d' ' -f1,2 "$SSHD_DIR/ssh_host_ed25519_key.pub")" >"$CLIENT/known_hosts"
	cat >"$CLIENT/ssh_config" <<-EOF
		# scripts/ssh-host.sh: the test SSH server (ssh -F $CLIENT/ssh_config $HOSTNAME_NS CMD)
		Host $HOSTNAME_NS
		  HostName $ADDR
		  Port $PORT
		  User $RUSER
		  IdentityFile $CLIENT/id_ed25519
		  IdentitiesOnly yes
		  UserKnownHostsFile $CLIENT/known_hosts
		  GlobalKnownHostsFile /dev/null
		  StrictHostKeyChecking yes
		  BatchMode yes
		  ConnectTimeout 10
	EOF
	chmod 0644 "$CLIENT/known_hosts" "$CLIENT/ssh_config"
}

make_network() {
	mark_run_netns
	ip netns add "$NETNS"
	ip link add "$VETH_HOST" type veth peer name "$VETH_NS" netns "$NETNS"
	ip addr add "$GATEWAY/$PREFIX" dev "$VETH_HOST"
	# addrgenmode none: no IPv6 link-local addresses, only the IPv4 ones above (no sysctl needed for that).
	ip link set "$VETH_HOST" addrgenmode none
	ip link set "$VETH_HOST" up
	ip -n "$NETNS" link set lo up
	ip -n "$NETNS" addr add "$ADDR/$NS_PREFIX" dev "$VETH_NS"
	ip -n "$NETNS" link set "$VETH_NS" addrgenmode none
	ip -n "$NETNS" link set "$VETH_NS" up
	# The default bridge is made here, with its address, and handed to dockerd (--bridge): a dockerd that has to
	# make one elects a default subnet that no route overlaps, and in 10.213.7.0/24 every one overlaps the veth's.
	# Not named docker0: a dockerd that finds a stale default network in its data root deletes docker0.
	ip -n "$NETNS" link add "$BRIDGE" type bridge
	ip -n "$NETNS" link set "$BRIDGE" addrgenmode none
	ip -n "$NETNS" addr add "$BRIDGE_ADDR" dev "$BRIDGE"
	ip -n "$NETNS" link set "$BRIDGE" up
	netns_id >"$RUNDIR/net.ns"
	make_uplink
}

# The server's way out: its default route is this machine, which masquerades it. Every rule carries the comment
# UPLINK_TAG, so that down finds exactly these.
UPLINK_TAG=envd-sshhost
make_uplink() {
	ip -n "$NETNS" route add default via "$GATEWAY"
	if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then
		echo 1 >/proc/sys/net/ipv4/ip_forward
		touch "$RUNDIR/turned-on-ip-forward"
	fi
	# -I: before Docker's FORWARD rules, whose chain policy is DROP.
	iptables -t nat -A POSTROUTING -s "$GATEWAY/$PREFIX" ! -o "$VETH_HOST" -j MASQUERADE -m comment --comment "$UPLINK_TAG"
	iptables -I FORWARD -i "$VETH_HOST" ! -o "$VETH_HOST" -j ACCEPT -m comment --comment "$UPLINK_TAG"
	iptables -I FORWARD -o "$VETH_HOST" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT -m comment --comment "$UPLINK_TAG"
}

remove_uplink() {
	local table rule
	for table in nat filter; do
		iptables -t "$table" -S 2>/dev/null | grep -- "--comment $UPLINK_TAG" | sed 's/^-A /-D /' | while read -r rule; do
			# shellcheck disable=SC2086 # the rule's own words
			eval iptables -t "$table" $rule || true
		done || true
	done
	if [ -f "$RUNDIR/turned-on-ip-forward" ]; then
		echo 0 >/proc/sys/net/ipv4/ip_forward
	fi
}

# --- the server's mount namespace --------------------------------------------------------------------------------

# Run inside the new mount namespace (private propagation), as root: hide the client's files, fresh /run, a sysfs
# of the netns. Copies of the host's mounts below the hidden paths (containers' overlays and netns files, buildkit
# secrets) are detached first so the server holds no reference to them.
# shellcheck disable=SC2016 # expanded by the inner shell
NS_SETUP='
set -euo pipefail
detach_below() { # umount -l every mount at or below $1, deepest first
	awk -v p="$1" '"'"'{ m = $5; if (m == p || index(m, p "/") == 1) print length(m), m }'"'"' /proc/self/mountinfo |
		sort -rn | cut -d" " -f2- | while read -r m; do umount -l "$(printf "%b" "$m")" 2>/dev/null || true; done
}
hide() { # DIR MODE
	[ -d "$1" ] || return 0
	detach_below "$1"
	mount -t tmpfs -o "mode=$2,nosuid,nodev" envd-sshhost "$1"
}
hide /tmp 1777
hide /work 0755
hide /home 0755
hide /var/log 0755
hide /var/lib/docker 0711
hide /dev/shm 1777
# /etc/docker of its own (the daemon.json it reads, the key.json its ID comes from), not the host dockerd'"'"'s.
mount --bind "$3" /etc/docker
# sysfs as the netns sees it (/sys/class/net lists its own links), with the cgroup hierarchies moved over.
mkdir /tmp/cgroup
mount --rbind /sys/fs/cgroup /tmp/cgroup
umount -l /sys
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount --move /tmp/cgroup /sys/fs/cgroup
rmdir /tmp/cgroup
detach_below /run
mount -t tmpfs -o mode=0755,nosuid,nodev envd-sshhost /run
mkdir -m 0755 /run/sshd /run/lock "$1"
touch /var/log/lastlog /var/log/wtmp /run/utmp
hostname "$2"
'

make_namespace() {
	local h i
	start holder nsenter --net="/run/netns/$NETNS" -- unshare --mount --uts --propagation private -- sleep infinity
	h=$STARTED
	for ((i = 0; i < 100; i++)); do
		if comm_is "$h" sleep && [ "$(ns_of "$h" mnt)" != "$(ns_of $$ mnt)" ]; then break; fi
		running "$h" || die "the namespace holder exited (log $STATE/holder.log)"
		sleep 0.05
	done
	comm_is "$h" sleep || die "the namespace holder did not start"
	ns_of "$h" mnt >"$RUNDIR/mnt.ns"
	[ "$(ns_of "$h" net)" = "$(cat "$RUNDIR/net.ns")" ] || die "the holder is not in netns $NETNS"
	install -d -m 0755 "$STATE/etc-docker"
	echo '{}' >"$STATE/etc-docker/daemon.json"
	in_ns bash -c "$NS_SETUP" ns-setup "$EXEC_ROOT" "$HOSTNAME_NS" "$STATE/etc-docker"
}

# --- dockerd ---------------------------------------------------------------------------------------------------

start_dockerd() {
	local driver d i
	driver=$($DOCKER info --format '{{.Driver}}' 2>/dev/null || true)
	[ -n "$driver" ] || { driver=overlay2; log "dockerd: the host's Docker does not answer; storage driver $driver"; }
	mkdir -p "$STATE/docker"
	chmod 0711 "$STATE/docker"
	start dockerd nsenter --mount="/proc/$(holder_pid)/ns/mnt" --uts="/proc/$(holder_pid)/ns/uts" \
		--net="/proc/$(holder_pid)/ns/net" -- dockerd \
		--data-root "$STATE/docker" \
		--exec-root "$EXEC_ROOT" \
		--pidfile "$DOCKER_PIDFILE" \
		-H unix:///run/docker.sock --group docker \
		--cgroup-parent "$CGROUP_PARENT" \
		--storage-driver "$driver" \
		--bridge "$BRIDGE" \
		--default-address-pool "base=$POOL,size=28" \
		--registry-mirror "http://$MIRROR" --insecure-registry "$MIRROR"
	d=$STARTED
	for ((i = 0; i < 600; i++)); do
		rdocker version >/dev/null 2>&1 && break
		if ! running "$d"; then
			tail -n 15 "$STATE/dockerd.log" >&2 || true
			die "the server's dockerd exited during start-up (log $STATE/dockerd.log)"
		fi
		sleep 0.1
	done
	rdocker version >/dev/null 2>&1 || die "the server's dockerd did not answer in 60 s (log $STATE/dockerd.log)"
	comm_is "$d" dockerd || die "pid $d is not dockerd"
}

# --- sshd ------------------------------------------------------------------------------------------------------

start_sshd() {
	local s i sftp=/usr/lib/openssh/sftp-server
	cat >"$SSHD_DIR/sshd_config" <<-EOF
		# scripts/ssh-host.sh: the test server's sshd (not /etc/ssh/sshd_config)
		ListenAddress $ADDR:$PORT
		HostKey $SSHD_DIR/ssh_host_ed25519_key
		PidFile $SSHD_PIDFILE
		UsePAM no
		PubkeyAuthentication yes
		AuthorizedKeysFile .ssh/authorized_keys
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PermitRootLogin no
		# envd-nodocker: a user e2e/ssh_test.go adds for its run, not in the docker group.
		AllowUsers $RUSER envd-nodocker
		AllowTcpForwarding yes
		AllowStreamLocalForwarding yes
		GatewayPorts no
		X11Forwarding no
		PrintMotd no
		PrintLastLog no
		# tests open many connections at once (docker dial-stdio, -W per published port)
		MaxStartups 100:30:200
		MaxSessions 100
		ClientAliveInterval 30
		AcceptEnv LANG LC_*
		LogLevel VERBOSE
	EOF
	[ ! -x "$sftp" ] || echo "Subsystem sftp $sftp" >>"$SSHD_DIR/sshd_config"
	in_ns /usr/sbin/sshd -t -f "$SSHD_DIR/sshd_config" || die "sshd rejects $SSHD_DIR/sshd_config"
	start sshd nsenter --mount="/proc/$(holder_pid)/ns/mnt" --uts="/proc/$(holder_pid)/ns/uts" \
		--net="/proc/$(holder_pid)/ns/net" -- /usr/sbin/sshd -D -f "$SSHD_DIR/sshd_config" -E "$STATE/sshd.log"
	s=$STARTED
	for ((i = 0; i < 100; i++)); do
		ssh -F "$CLIENT/ssh_config" -o ConnectTimeout=2 "$HOSTNAME_NS" true 2>/dev/null && break
		if ! running "$s"; then
			tail -n 15 "$STATE/sshd.log" >&2 || true
			die "sshd exited during start-up (log $STATE/sshd.log)"
		fi
		sleep 0.1
	done
	ssh -F "$CLIENT/ssh_config" "$HOSTNAME_NS" true || die "cannot log in over ssh (log $STATE/sshd.log)"
	comm_is "$s" sshd || die "pid $s is not sshd"
}

# The server's docker.io: a relay on the gateway address to the registry mirror on this machine's 127.0.0.1 (what a
# real server has as Docker Hub or its company's mirror). It runs in the root namespace, by PID like the rest.
start_mirror_relay() {
	local port=${MIRROR##*:}
	setsid "${CLEAN_ENV[@]}" socat "TCP-LISTEN:$port,bind=$GATEWAY,fork,reuseaddr" "TCP:127.0.0.1:$port" \
		>>"$STATE/mirror-relay.log" 2>&1 </dev/null &
	echo $! >"$RUNDIR/mirror-relay.pid"
}
mirror_relay_pid() {
	local p
	p=$(pid_file mirror-relay)
	if running "$p" && comm_is "$p" socat; then echo "$p"; fi
}

write_env() {
	local h d s
	h=$(holder_pid) d=$(dockerd_pid) s=$(sshd_pid)
	cat >"$ENV_FILE.tmp" <<-EOF
		ENVD_SSHHOST_ADDR='$ADDR'
		ENVD_SSHHOST_PORT='$PORT'
		ENVD_SSHHOST_GATEWAY='$GATEWAY'
		ENVD_SSHHOST_USER='$RUSER'
		ENVD_SSHHOST_UID='$RUID'
		ENVD_SSHHOST_NAME='$HOSTNAME_NS'
		ENVD_SSHHOST_KEY='$CLIENT/id_ed25519'
		ENVD_SSHHOST_KNOWN_HOSTS='$CLIENT/known_hosts'
		ENVD_SSHHOST_SSH_CONFIG='$CLIENT/ssh_config'
		ENVD_SSHHOST_HOME='$RHOME'
		ENVD_SSHHOST_MIRROR='$MIRROR'
		ENVD_SSHHOST_MIRROR_RELAY_PID='$(mirror_relay_pid)'
		ENVD_SSHHOST_DOCKERD_PID='$d'
		ENVD_SSHHOST_SSHD_PID='$s'
		ENVD_SSHHOST_HOLDER_PID='$h'
		ENVD_SSHHOST_PIDS='$d $s $h'
		ENVD_SSHHOST_NSENTER='nsenter --mount=/proc/$h/ns/mnt --uts=/proc/$h/ns/uts --net=/proc/$h/ns/net'
	EOF
	mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# --- up, down, status ------------------------------------------------------------------------------------------

is_up() {
	[ -f "$ENV_FILE" ] && [ -n "$(holder_pid)" ] && [ -n "$(dockerd_pid)" ] && [ -n "$(sshd_pid)" ] && [ -n "$(mirror_relay_pid)" ] &&
		[ "$(ns_of "$(holder_pid)" net)" = "$(netns_id)" ] && rdocker version >/dev/null 2>&1
}

leftovers() {
	local what=()
	[ ! -d "$RUNDIR" ] || what+=("$RUNDIR")
	[ ! -f "$ENV_FILE" ] || what+=("$ENV_FILE")
	! netns_exists || what+=("netns $NETNS")
	! ip link show "$VETH_HOST" >/dev/null 2>&1 || what+=("link $VETH_HOST")
	! iptables -t nat -S 2>/dev/null | grep -- "--comment $UPLINK_TAG" >/dev/null || what+=("iptables rules")
	! getent passwd "$RUSER" >/dev/null || what+=("user $RUSER")
	! getent group "$RUSER" >/dev/null || what+=("group $RUSER")
	[ -z "$(ns_pids)" ] || what+=("processes")
	[ ${#what[@]} -eq 0 ] || echo "${what[*]}"
}

up() {
	[ "$(id -u)" = 0 ] || die "run as root"
	if is_up; then
		log "already up (dockerd $(dockerd_pid), sshd $(sshd_pid), holder $(holder_pid))"
		cat "$ENV_FILE"
		return
	fi
	local t0=$EPOCHREALTIME left
	left=$(leftovers)
	if [ -n "$left" ]; then
		log "cleaning up after an earlier run: $left"
		phase_start
		teardown 1
		phase_end cleanup
	fi
	phase_start
	install_sshd
	phase_end package
	for cmd in nsenter unshare ip ssh ssh-keygen dockerd useradd; do
		command -v "$cmd" >/dev/null || die "$cmd is missing"
	done
	mkdir -p "$STATE" "$RUNDIR"
	chmod 0755 "$STATE"
	phase_start
	make_keys
	make_user
	phase_end user+keys
	phase_start
	make_network
	phase_end network
	phase_start
	make_namespace
	phase_end namespace
	phase_start
	start_dockerd
	phase_end dockerd
	phase_start
	start_sshd
	start_mirror_relay
	phase_end sshd
	write_env
	T_PHASE=$t0
	phase_end "up total"
	cat "$ENV_FILE"
}

# teardown KEEP_DATA: undo everything up did, whatever state it is in (also after a crash).
teardown() {
	local keep=$1 h d s r pids m
	h=$(holder_pid) d=$(dockerd_pid) s=$(sshd_pid)
	# sshd first: no new sessions; then the sessions (they run in the server's mount namespace, not as sshd's
	# children only), so that nothing talks to dockerd while it stops.
	if [ -n "$s" ]; then
		stop_pids 10 "$s"
		log "sshd: stopped pid $s"
	fi
	r=$(mirror_relay_pid)
	if [ -n "$r" ]; then
		stop_pids 5 "$r"
		log "mirror relay: stopped pid $r"
	fi
	if [ -n "$d" ] && [ -n "$h" ]; then
		pids=$(rdocker ps -q 2>/dev/null || true)
		if [ -n "$pids" ]; then
			# shellcheck disable=SC2086 # one word per container
			rdocker kill $pids >/dev/null 2>&1 || true
			log "dockerd: killed containers ${pids//$'\n'/ }"
		fi
	fi
	if [ -n "$d" ]; then
		stop_pids 40 "$d"
		log "dockerd: stopped pid $d"
	fi
	# Whatever is left in the server's namespaces or cgroups: sessions, containerd and shims of a killed
	# dockerd, containers, test processes.
	for f in /sys/fs/cgroup/freezer"$CGROUP_PARENT"/*/freezer.state; do
		[ ! -f "$f" ] || echo THAWED >"$f" 2>/dev/null || true
	done
	pids=$(ns_pids "$h")
	if [ -n "$pids" ]; then
		log "stopping what is left on the server: pids ${pids//$'\n'/ }"
		# shellcheck disable=SC2086 # one word per pid
		stop_pids 2 $pids
	fi
	if [ -n "$h" ]; then
		# What dockerd left mounted (overlays under its data root, netns files under /run), deepest first, so that
		# nothing under the data root is busy when it is removed.
		# shellcheck disable=SC2016 # expanded by the inner shell
		in_ns sh -c 'awk -v a="$1/" '\''{ m = $5; if (index(m, a) == 1 || index(m, "/run/") == 1) print length(m), m }'\'' \
			/proc/self/mountinfo | sort -rn | cut -d" " -f2- | while read -r m; do umount -l "$m" || true; done' \
			unmount "$STATE" || true
		stop_pids 10 "$h"
		log "namespace holder: stopped pid $h"
	fi
	remove_uplink
	if ip link show "$VETH_HOST" >/dev/null 2>&1; then ip link del "$VETH_HOST"; fi
	if netns_exists; then ip netns del "$NETNS"; fi
	remove_run_netns
	# The cgroup parent the containers were under, in each hierarchy (children first).
	for m in /sys/fs/cgroup/*"$CGROUP_PARENT"; do
		[ -d "$m" ] || continue
		find "$m" -depth -type d -exec rmdir {} + 2>/dev/null || log "warning: cannot remove cgroup $m"
	done
	if getent passwd "$RUSER" >/dev/null; then
		[ "$(id -u "$RUSER")" = "$RUID" ] || die "user $RUSER exists with another UID than $RUID: not ours, left alone"
		userdel "$RUSER"
		log "user $RUSER: removed"
	fi
	if getent group "$RUSER" >/dev/null; then groupdel "$RUSER"; fi
	if [ -d "$STATE" ]; then
		if [ "$keep" = 1 ] && [ -d "$STATE/docker" ]; then
			find "$STATE" -mindepth 1 -maxdepth 1 ! -name docker -exec rm -rf --one-file-system {} +
			log "removed $STATE but docker/ (kept)"
		else
			rm -rf --one-file-system "$STATE"
			log "removed $STATE"
		fi
	fi
}

down() {
	[ "$(id -u)" = 0 ] || die "run as root"
	local keep=0
	case ${1:-} in
	--keep-data) keep=1 ;;
	"") ;;
	*) die "usage: $0 down [--keep-data]" ;;
	esac
	local t0=$EPOCHREALTIME left
	teardown "$keep"
	left=$(leftovers)
	[ -z "$left" ] || die "still there after down: $left"
	T_PHASE=$t0
	phase_end "down"
}

status() {
	if is_up; then
		echo "up: dockerd pid $(dockerd_pid), sshd pid $(sshd_pid) on $ADDR:$PORT, holder pid $(holder_pid); env $ENV_FILE"
		return 0
	fi
	local left
	left=$(leftovers)
	if [ -n "$left" ]; then
		echo "down, with leftovers (up or down cleans them): $left"
	else
		echo "down"
	fi
	return 1
}

case ${1:-} in
up) up ;;
down)
	shift
	down "$@"
	;;
status) status ;;
*) die "usage: $0 up|down [--keep-data]|status" ;;
esac
