# shellcheck shell=bash
# /run/netns is shared by kube-cluster.sh (CNI's namespaces) and ssh-host.sh (the server's). Whichever finds none
# at up leaves NETNS_MARK; whichever is down last removes /run/netns when it is empty (ip netns mounts it, so it
# is unmounted first). Neither ever removes the other's namespaces.
NETNS_MARK=/run/.envd-made-run-netns

mark_run_netns() { [ -d /run/netns ] || touch "$NETNS_MARK"; }

remove_run_netns() {
	[ -f "$NETNS_MARK" ] || return 0
	if [ -d /run/netns ] && [ -n "$(ls -A /run/netns)" ]; then return 0; fi
	while mountpoint -q /run/netns 2>/dev/null; do umount /run/netns; done
	rmdir /run/netns 2>/dev/null || true
	rm -f "$NETNS_MARK"
}
