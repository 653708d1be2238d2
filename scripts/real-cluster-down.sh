#!/usr/bin/env bash
# Removes the real cluster of scripts/real-cluster-up.sh and everything it made: its
# processes (only the recorded PIDs, the containers in its kubepods cgroups and the shims of
# its private containerd socket), mounts under its state folder, the network namespace (with
# its links, routes and nftables rules), the kubepods cgroups, the host paths that did not
# exist before, and the sysctls the kubelet rewrote. Harmless when nothing is up.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/real-cluster/common.sh
. "$here/real-cluster/common.sh"

((EUID == 0)) || die "removing the real node needs root"
if [[ ! -d $STATE ]]; then
  log "nothing to remove ($STATE does not exist)"
  exit 0
fi

# Every process in the kubepods cgroups: the pods' containers, and only those.
pod_pids() {
  local root
  while IFS= read -r root; do
    [[ -d $root/kubepods ]] && find "$root/kubepods" -name cgroup.procs -exec cat {} + 2>/dev/null
  done < <(cgroup_roots) | sort -u
}

shim_pids() {
  local pid
  for pid in $(pgrep -f containerd-shim-runc-v2 2>/dev/null); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-address $CONTAINERD_SOCK " && echo "$pid"
  done
  return 0
}

log "stopping the kubelet, kube-proxy and CoreDNS"
stop kubelet kube-proxy coredns
for _ in $(seq 50); do
  left=$(pod_pids)
  [[ -z $left ]] && break
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null
  sleep 0.1
done
[[ -z $(pod_pids) ]] || log "warning: processes are left in the kubepods cgroups: $(pod_pids | tr '\n' ' ')"
shims=$(shim_pids)
if [[ -n $shims ]]; then
  # shellcheck disable=SC2086
  kill -KILL $shims 2>/dev/null
  for pid in $shims; do while [[ -e /proc/$pid ]]; do sleep 0.05; done; done
fi
log "stopping containerd and the control plane"
stop containerd
stop metrics-server kube-scheduler kube-controller-manager
stop kube-apiserver
stop etcd

log "unmounting what the node mounted"
mapfile -t mounts < <(awk -v s="$STATE/" 'index($5, s) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
for m in ${mounts[@]+"${mounts[@]}"}; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
done

log "removing the kubepods cgroups"
while IFS= read -r root; do
  [[ -d $root/kubepods ]] && find "$root/kubepods" -depth -type d -exec rmdir {} + 2>/dev/null
  [[ -d $root/kubepods ]] && log "warning: $root/kubepods could not be removed"
done < <(cgroup_roots)

if ip netns list 2>/dev/null | grep -qw "$NETNS"; then
  log "deleting network namespace $NETNS (its links, routes and rules go with it)"
  ip netns delete "$NETNS"
fi
ip link show "$HOST_VETH" >/dev/null 2>&1 && ip link delete "$HOST_VETH"

if [[ -f $RECORD/sysctls ]]; then
  while IFS= read -r setting; do sysctl -q -w "$setting"; done <"$RECORD/sysctls"
fi
if [[ -f $RECORD/host-paths-present ]]; then
  for ((i = ${#HOST_PATHS[@]} - 1; i >= 0; i--)); do
    path=${HOST_PATHS[i]}
    grep -qxF "$path" "$RECORD/host-paths-present" && continue
    [[ -e $path ]] || continue
    # Other namespaces may have been added since: /run/netns goes only when empty.
    [[ $path == /run/netns && -n $(ls -A "$path") ]] && continue
    if mountpoint -q "$path"; then umount "$path" 2>/dev/null || umount -l "$path"; fi
    rm -rf --one-file-system "$path"
  done
fi

rm -rf --one-file-system "$STATE"
log "removed"
