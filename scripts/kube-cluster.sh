#!/usr/bin/env bash
# A real single-node Kubernetes for envd's tests and for users without a cluster, offline. It follows the recipe
# verified on this machine kind (../shared/KUBERNETES.md): upstream components built from the Go module proxy and
# cached by version, etcd and the CNI plugins from Debian, a containerd of its own (Docker's is left alone), images
# pulled from the registry on 127.0.0.1:5000 that scripts/setup.sh runs.
#
# Usage (as root):
#   scripts/kube-cluster.sh build    build (once per version) kube-apiserver, -controller-manager, -scheduler,
#                                    kubelet, kube-proxy and kubectl into $ENVD_KUBE_CACHE/vVERSION/bin
#                                    (~11-14 min cold on 2 cores; nothing when cached)
#   scripts/kube-cluster.sh up       build if needed, start the cluster (idempotent: a running cluster is kept),
#                                    wait until the node is Ready; the last line printed is KUBECONFIG=PATH
#   scripts/kube-cluster.sh down     stop every process it started (by pid), remove what the cluster made on the host
#                                    (iptables chains, the bridge, netns, mounts, cgroups, directories) and put the
#                                    sysctls it changed back; the cached binaries stay
#   scripts/kube-cluster.sh status   what runs, by pid
#
# Storage: the controller manager's host-path provisioner (single-node only) behind an ordinary default
# StorageClass "standard"; claims become directories under /tmp/hostpath_pv, removed on down.
#
# Environment:
#   ENVD_KUBE_VERSION   default 1.35.4 (the last minor that runs on containerd 1.x and allows cgroup v1)
#   ENVD_KUBE_CACHE     default /var/cache/envd-infra/kube: the binaries and their build module
#   ENVD_KUBE_STATE     default /var/lib/envd-infra/kube: certificates, etcd, containerd, kubelet, logs, pids
#   ENVD_INFRA_MIRROR   default 127.0.0.1:5000: the registry the cluster pulls from (scripts/setup.sh starts it)
set -euo pipefail

VERSION=${ENVD_KUBE_VERSION:-1.35.4}
CACHE=${ENVD_KUBE_CACHE:-/var/cache/envd-infra/kube}
STATE=${ENVD_KUBE_STATE:-/var/lib/envd-infra/kube}
REGISTRY=${ENVD_INFRA_MIRROR:-127.0.0.1:5000}
BIN=$CACHE/v$VERSION/bin
RUN=/run/envd-kube # sockets: short paths
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
PACKAGES=(etcd-server containernetworking-plugins conntrack socat ethtool ebtables gcc openssl)
PAUSE_IMAGE=$REGISTRY/envd/pause:1
BRIDGE=envdkube0
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
HOSTPATH_PV=/tmp/hostpath_pv
# The sysctls the kubelet and kube-proxy set; down puts back what up found.
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes
	net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
	net.ipv4.ip_forward)
# Directories the cluster creates outside $STATE; down removes those that did not exist before up.
# /run/netns is not one: the SSH server's namespace may live there too (lib/run-netns.sh).
HOST_DIRS=(/var/log/pods /var/log/containers /var/lib/kubelet /var/lib/cni /etc/cni /opt/cni "$HOSTPATH_PV"
	"$RUN")

# shellcheck source=lib/run-netns.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/run-netns.sh"

log() { printf 'kube-cluster: %s\n' "$*" >&2; }
die() { printf 'kube-cluster: error: %s\n' "$*" >&2; exit 1; }

kubectl() { "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

built() {
	local c
	for c in "${COMPONENTS[@]}"; do
		[ -x "$BIN/$c" ] || return 1
	done
}

# build_binaries builds the components in a throw-away module of their own (not envd's go.mod): it requires
# k8s.io/kubernetes and replaces each staging module, which that go.mod lists at v0.0.0, with its release.
build_binaries() {
	if built; then
		log "binaries: v$VERSION cached in $BIN"
		return
	fi
	local src=$CACHE/v$VERSION/src minor=${VERSION#*.} staging
	minor=${minor%%.*}
	staging=0.${VERSION#*.}
	mkdir -p "$src"
	log "binaries: building v$VERSION into $BIN (about 14 min cold on 2 cores)"
	(
		cd "$src"
		proxy=$(go env GOPROXY)
		proxy=${proxy%%,*}
		curl -fsS "$proxy/k8s.io/kubernetes/@v/v$VERSION.mod" -o kubernetes.mod ||
			die "cannot fetch k8s.io/kubernetes v$VERSION's go.mod from the Go module proxy"
		{
			echo "module envd.dev/kube-build"
			echo
			echo "go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')"
			echo
			echo "require k8s.io/kubernetes v$VERSION"
			echo
			awk -v v="v$staging" '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print "replace " $1 " => " $1 " " v }' kubernetes.mod | sort -u
		} >go.mod
		ldf="-s -w"
		for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			ldf="$ldf -X $pkg.gitVersion=v$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
		done
		rm -rf "$BIN.tmp"
		mkdir -p "$BIN.tmp"
		pkgs=()
		for c in "${COMPONENTS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
		GOFLAGS=-mod=mod go build -ldflags "$ldf" -o "$BIN.tmp/" "${pkgs[@]}"
	)
	rm -rf "$BIN"
	mv "$BIN.tmp" "$BIN"
	log "binaries: built v$VERSION in $BIN"
}

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return
	log "packages: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

node_ip() { ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit }}'; }
node_name() { hostname | tr '[:upper:]' '[:lower:]'; }

pidfile() { echo "$STATE/pids/$1.pid"; }
pid_of() { cat "$(pidfile "$1")" 2>/dev/null || true; }
alive() {
	local pid
	pid=$(pid_of "$1")
	[ -n "$pid" ] && [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

# start NAME CMD...: run CMD in its own session, its output in logs/NAME.log, its pid in pids/NAME.pid.
start() {
	local name=$1
	shift
	if alive "$name"; then
		return
	fi
	setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$(pidfile "$name")"
}

# wait_for WHAT SECONDS LOGNAME CMD...: poll CMD until it succeeds; on time-out show the log's end and fail.
wait_for() {
	local what=$1 secs=$2 name=$3 i
	shift 3
	for ((i = 0; i < secs * 4; i++)); do
		if "$@" >/dev/null 2>&1; then
			return
		fi
		if [ -n "$name" ] && ! alive "$name"; then
			tail -n 20 "$STATE/logs/$name.log" >&2 || true
			die "$name exited while waiting for $what (log: $STATE/logs/$name.log)"
		fi
		sleep 0.25
	done
	[ -z "$name" ] || tail -n 20 "$STATE/logs/$name.log" >&2 || true
	die "$what not ready within ${secs}s${name:+ (log: $STATE/logs/$name.log)}"
}

# baseline records, once per up/down cycle, what down must put back.
baseline() {
	[ -f "$STATE/baseline/done" ] && return
	mkdir -p "$STATE/baseline"
	modprobe br_netfilter 2>/dev/null || true
	local s d
	for s in "${SYSCTLS[@]}"; do
		sysctl -n "$s" 2>/dev/null | sed "s|^|$s=|" >>"$STATE/baseline/sysctl" || true
	done
	for d in "${HOST_DIRS[@]}"; do
		[ -e "$d" ] || echo "$d" >>"$STATE/baseline/new-dirs"
	done
	mark_run_netns
	nft list tables 2>/dev/null >"$STATE/baseline/nft-tables" || true
	touch "$STATE/baseline/new-dirs" "$STATE/baseline/done"
}

certificates() {
	local pki=$STATE/pki ip
	ip=$(node_ip)
	if [ -f "$pki/admin.crt" ] && [ "$(cat "$pki/node-ip" 2>/dev/null)" = "$ip" ]; then
		return
	fi
	log "certificates: a CA, the API server's (node IP $ip), an admin client and the service-account keys"
	rm -rf "$pki"
	mkdir -p "$pki"
	(
		cd "$pki"
		umask 077
		openssl genrsa -out ca.key 2048 2>/dev/null
		openssl req -x509 -new -key ca.key -subj /CN=envd-kube-ca -days 3650 -out ca.crt
		cat >apiserver.ext <<-EOF
			subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:10.96.0.1,IP:$ip
			extendedKeyUsage=serverAuth
		EOF
		openssl genrsa -out apiserver.key 2048 2>/dev/null
		openssl req -new -key apiserver.key -subj /CN=kube-apiserver -out apiserver.csr
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
			-extfile apiserver.ext -out apiserver.crt 2>/dev/null
		echo "extendedKeyUsage=clientAuth" >client.ext
		openssl genrsa -out admin.key 2048 2>/dev/null
		openssl req -new -key admin.key -subj /O=system:masters/CN=admin -out admin.csr
		openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
			-extfile client.ext -out admin.crt 2>/dev/null
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
		echo "$ip" >node-ip
	)
	cat >"$STATE/admin.kubeconfig" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: envd-kube
		  cluster:
		    server: https://127.0.0.1:6443
		    certificate-authority: $pki/ca.crt
		users:
		- name: admin
		  user:
		    client-certificate: $pki/admin.crt
		    client-key: $pki/admin.key
		contexts:
		- name: envd-kube
		  context: {cluster: envd-kube, user: admin}
		current-context: envd-kube
	EOF
}

# pause_image builds the sandbox image from a 20-line static C program and pushes it to the local registry.
pause_image() {
	if curl -fs -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$REGISTRY/v2/envd/pause/manifests/1"; then
		return
	fi
	log "pause image: building $PAUSE_IMAGE"
	local tmp
	tmp=$(mktemp -d)
	cat >"$tmp/pause.c" <<-'EOF'
		#include <signal.h>
		#include <stdlib.h>
		#include <sys/wait.h>
		#include <unistd.h>
		static void quit(int sig) { (void)sig; _exit(0); }
		static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
		int main(void) {
			signal(SIGINT, quit);
			signal(SIGTERM, quit);
			signal(SIGCHLD, reap);
			for (;;) pause();
			return 0;
		}
	EOF
	mkdir -p "$tmp/root"
	gcc -Os -static -o "$tmp/root/pause" "$tmp/pause.c"
	tar -C "$tmp/root" -c pause | /usr/bin/docker import --change 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null
	/usr/bin/docker push "$PAUSE_IMAGE" >/dev/null
	/usr/bin/docker rmi "$PAUSE_IMAGE" >/dev/null
	rm -rf "$tmp"
}

configs() {
	local c=$STATE/containerd
	mkdir -p "$c/root" "$c/certs.d/$REGISTRY" "$STATE/cni/net.d" "$STATE/cni/ipam" "$STATE/kubelet/root" \
		"$STATE/kubelet/pki" "$STATE/etcd" "$RUN"
	cat >"$c/certs.d/$REGISTRY/hosts.toml" <<-EOF
		server = "http://$REGISTRY"
		[host."http://$REGISTRY"]
		  capabilities = ["pull", "resolve"]
	EOF
	cat >"$c/config.toml" <<-EOF
		version = 2
		root = "$c/root"
		state = "$RUN/containerd"
		[grpc]
		  address = "$RUN/containerd.sock"
		[ttrpc]
		  address = "$RUN/containerd.sock.ttrpc"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$c/opt"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$PAUSE_IMAGE"
		  restrict_oom_score_adj = true
		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "overlayfs"
		    default_runtime_name = "runc"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
		        SystemdCgroup = false
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "/usr/lib/cni"
		    conf_dir = "$STATE/cni/net.d"
		  [plugins."io.containerd.grpc.v1.cri".registry]
		    config_path = "$c/certs.d"
	EOF
	# firewall: Docker sets the FORWARD policy to DROP; the plugin lets pod traffic through.
	cat >"$STATE/cni/net.d/10-envd-kube.conflist" <<-EOF
		{
		  "cniVersion": "0.4.0",
		  "name": "envd-kube",
		  "plugins": [
		    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
		     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
		              "dataDir": "$STATE/cni/ipam"}},
		    {"type": "portmap", "capabilities": {"portMappings": true}},
		    {"type": "firewall"},
		    {"type": "loopback"}
		  ]
		}
	EOF
	cat >"$STATE/kubelet/config.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		failCgroupV1: false
		cgroupDriver: cgroupfs
		containerRuntimeEndpoint: unix://$RUN/containerd.sock
		authentication:
		  anonymous: {enabled: false}
		  webhook: {enabled: false}
		  x509: {clientCAFile: $STATE/pki/ca.crt}
		authorization: {mode: AlwaysAllow}
		failSwapOn: false
		podCIDR: $POD_CIDR
		resolvConf: /etc/resolv.conf
		evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
		imageGCHighThresholdPercent: 100
		imageGCLowThresholdPercent: 99
		healthzBindAddress: 127.0.0.1
	EOF
	cat >"$STATE/kube-proxy.yaml" <<-EOF
		apiVersion: kubeproxy.config.k8s.io/v1alpha1
		kind: KubeProxyConfiguration
		mode: iptables
		clusterCIDR: $CLUSTER_CIDR
		hostnameOverride: $(node_name)
		clientConnection: {kubeconfig: $STATE/admin.kubeconfig}
		metricsBindAddress: 127.0.0.1:10249
		healthzBindAddress: 127.0.0.1:10256
		conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
	EOF
}

cluster_ready() { kubectl get --raw /readyz >/dev/null 2>&1; }
node_ready() {
	kubectl get node "$(node_name)" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

up() {
	[ "$(id -u)" = 0 ] || die "run as root"
	curl -fsS -o /dev/null "http://$REGISTRY/v2/" || die "no registry answers on $REGISTRY: run scripts/setup.sh first"
	install_packages
	build_binaries
	mkdir -p "$STATE/pids" "$STATE/logs"
	if alive kube-apiserver && alive kubelet && cluster_ready && node_ready; then
		log "already running"
		echo "KUBECONFIG=$STATE/admin.kubeconfig"
		return
	fi
	local t0=$SECONDS pki=$STATE/pki ip
	baseline
	certificates
	pause_image
	configs
	ip=$(node_ip)

	start containerd containerd --config "$STATE/containerd/config.toml"
	start etcd etcd --name envd-kube --data-dir "$STATE/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster envd-kube=http://127.0.0.1:2380
	wait_for "etcd" 30 etcd curl -fsS http://127.0.0.1:2379/health
	start kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 --secure-port=6443 \
		--advertise-address="$ip" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
		--client-ca-file="$pki/ca.crt" --kubelet-client-certificate="$pki/admin.crt" \
		--kubelet-client-key="$pki/admin.key" --kubelet-preferred-address-types=InternalIP,Hostname \
		--service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC --allow-privileged=true
	wait_for "the API server" 90 kube-apiserver cluster_ready
	start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$STATE/admin.kubeconfig" \
		--bind-address=127.0.0.1 --leader-elect=false --service-account-private-key-file="$pki/sa.key" \
		--root-ca-file="$pki/ca.crt" --cluster-signing-cert-file="$pki/ca.crt" \
		--cluster-signing-key-file="$pki/ca.key" --service-cluster-ip-range="$SERVICE_CIDR" \
		--cluster-cidr="$CLUSTER_CIDR" --enable-hostpath-provisioner=true --use-service-account-credentials=true
	start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$STATE/admin.kubeconfig" \
		--bind-address=127.0.0.1 --leader-elect=false
	wait_for "containerd" 30 containerd ctr --address "$RUN/containerd.sock" version
	start kubelet "$BIN/kubelet" --config="$STATE/kubelet/config.yaml" --kubeconfig="$STATE/admin.kubeconfig" \
		--root-dir="$STATE/kubelet/root" --cert-dir="$STATE/kubelet/pki" --hostname-override="$(node_name)" \
		--node-ip="$ip"
	start kube-proxy "$BIN/kube-proxy" --config="$STATE/kube-proxy.yaml"
	wait_for "the node" 120 kubelet node_ready
	wait_for "the default service account" 60 kube-controller-manager kubectl get serviceaccount default
	kubectl apply -f - >/dev/null <<-EOF
		apiVersion: storage.k8s.io/v1
		kind: StorageClass
		metadata:
		  name: standard
		  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
		provisioner: kubernetes.io/host-path
		reclaimPolicy: Delete
		volumeBindingMode: Immediate
	EOF
	log "ready in $((SECONDS - t0))s: node $(node_name) ($ip), API https://127.0.0.1:6443, logs $STATE/logs"
	echo "KUBECONFIG=$STATE/admin.kubeconfig"
}

# stop NAME: SIGTERM, then SIGKILL after 20 s.
stop() {
	local pid i
	pid=$(pid_of "$1")
	[ -n "$pid" ] || return 0
	if alive "$1"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 80; i++)); do
			alive "$1" || break
			sleep 0.25
		done
		alive "$1" && kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$(pidfile "$1")"
}

# our_shims prints the pids of containerd shims serving this cluster's containerd.
our_shims() {
	local f
	for f in /proc/[0-9]*/cmdline; do
		{ tr '\0' ' ' <"$f"; } 2>/dev/null | grep -q "containerd-shim.*-address $RUN/containerd.sock" &&
			basename "$(dirname "$f")"
	done
	return 0
}

# drop_chains removes, in every table of iptables and ip6tables, the KUBE-* and CNI-* chains and the rules that
# use them, leaving every other rule (Docker's) as it is.
drop_chains() {
	local ipt
	for ipt in iptables ip6tables; do
		command -v "$ipt-save" >/dev/null || continue
		"$ipt-save" | grep -Eq 'KUBE-|CNI-' || continue
		"$ipt-save" | grep -Ev '^:(KUBE|CNI)-|^-A (KUBE|CNI)-|-j (KUBE|CNI)-|-g (KUBE|CNI)-' | "$ipt-restore" ||
			log "warning: could not remove the KUBE-/CNI- chains from $ipt"
	done
	# Tables that appeared with the cluster (iptables-nft makes e.g. ip6 nat on first use) go once empty.
	[ -f "$STATE/baseline/nft-tables" ] && command -v nft >/dev/null || return 0
	local family name rules
	while read -r _ family name; do
		grep -qx "table $family $name" "$STATE/baseline/nft-tables" && continue
		rules=$(nft -a list table "$family" "$name" 2>/dev/null | grep '# handle' | grep -Evc '^[[:space:]]*(table|chain) ' || true)
		[ "$rules" = 0 ] && nft delete table "$family" "$name" 2>/dev/null || true
	done < <(nft list tables 2>/dev/null)
}

down() {
	[ "$(id -u)" = 0 ] || die "run as root"
	[ -d "$STATE" ] || { log "not running"; return; }
	# Workloads first, while the kubelet still runs, so CNI DEL releases their addresses and rules.
	if alive kube-apiserver && alive kubelet && cluster_ready; then
		kubectl delete pods --all --all-namespaces --grace-period=5 --timeout=60s >/dev/null 2>&1 || true
	fi
	stop kubelet
	if alive containerd; then
		local c
		for c in $(ctr --address "$RUN/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr --address "$RUN/containerd.sock" -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
		done
		sleep 1
		for c in $(ctr --address "$RUN/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr --address "$RUN/containerd.sock" -n k8s.io tasks rm -f "$c" >/dev/null 2>&1 || true
		done
	fi
	stop containerd
	local pid
	for pid in $(our_shims); do kill -KILL "$pid" 2>/dev/null || true; done
	stop kube-proxy
	[ -x "$BIN/kube-proxy" ] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
	stop kube-scheduler
	stop kube-controller-manager
	stop kube-apiserver
	stop etcd

	ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
	drop_chains
	local ns m
	for ns in /run/netns/cni-*; do
		[ -e "$ns" ] && { umount "$ns" 2>/dev/null || true; rm -f "$ns"; }
	done
	remove_run_netns
	# Mounts below the cluster's directories, deepest first.
	while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done < <(awk '{print $5}' /proc/self/mountinfo | grep -E "^($STATE|$RUN|/var/lib/kubelet|$HOSTPATH_PV)(/|$)" | sort -r)
	local cg
	for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
		[ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	if [ -f "$STATE/baseline/sysctl" ]; then
		local kv
		while IFS= read -r kv; do
			[ "$(sysctl -n "${kv%%=*}" 2>/dev/null)" = "${kv#*=}" ] || sysctl -qw "$kv" >/dev/null || true
		done <"$STATE/baseline/sysctl"
	fi
	if [ -f "$STATE/baseline/new-dirs" ]; then
		local d
		while IFS= read -r d; do
			rm -rf --one-file-system "$d" || log "warning: could not remove $d"
		done <"$STATE/baseline/new-dirs"
	fi
	rm -rf --one-file-system "$STATE"
	log "down: processes stopped, bridge, chains, mounts, cgroups and directories removed, sysctls restored"
}

status() {
	local c
	for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
		if alive "$c"; then echo "$c running (pid $(pid_of "$c"))"; else echo "$c not running"; fi
	done
}

case "${1:-}" in
build) build_binaries ;;
up) up ;;
down) down ;;
status) status ;;
*) die "usage: $0 build|up|down|status" ;;
esac
