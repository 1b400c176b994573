#!/usr/bin/env bash
# Boot a throw-away cgroup-v2 guest and run pycontain's kernel tests in it (`make test-cgroup2`).
#
# The development and CI machines are hybrid (cgroup v1 controllers); the lab VM is Debian 13 on
# cgroup v2. This proves v2 behaviour on a real v2 kernel: a Debian 13 guest (kernel, Python,
# busybox from the Debian registry, cached outside the checkout) boots under qemu's TCG emulation
# (this host's /dev/kvm stalls a stock kernel: docs/DESIGN.md, "The test machines"), mounts the checkout
# read-only over 9p, runs guest-init.sh from it, and powers off. The guest's exit status is ours.
#
# Usage: tools/cgroup2-guest/run.sh [PYTEST ARGS...]     (default: tests/integration)
#        tools/cgroup2-guest/run.sh --run SCRIPT [ARGS...]  (a script instead: bench/*.py on v2)
#        tools/cgroup2-guest/run.sh --image              (build the cached image if needed, only)
# Exit status: the tests', or 3 when the guest gave none (it crashed or timed out).
# Environment: PYCONTAIN_VM_CACHE (default /var/cache/pycontain/cgroup2-guest),
#              PYCONTAIN_VM_TIMEOUT seconds for the guest run (default 3600: a slow day's
#              lane of the whole suite, within CI's 90 minutes),
#              PYCONTAIN_VM_REBUILD=1 to rebuild the cached image,
#              PYCONTAIN_VM_CGROUP=delegated to run the tests in a delegated service cgroup
#              like the lab VM's Jupyter (default: the root cgroup),
#              PYCONTAIN_VM_CLAIMS=DIR and PYCONTAIN_VM_ORDER=forward|reverse to share the suite
#              with another guest file by file (lanes.sh, shard.py).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
cache=${PYCONTAIN_VM_CACHE:-/var/cache/pycontain/cgroup2-guest}
timeout_s=${PYCONTAIN_VM_TIMEOUT:-3600}
suite=trixie
# what the image holds; bump when the image recipe below changes (8: e2fsprogs, lesson 16)
recipe=8
debs=linux-image-amd64,initramfs-tools,kmod,udev,python3,python3-venv,procps,util-linux,iproute2,nftables,busybox-static,libc-bin,e2fsprogs
# what the guest's tests and notebooks import: pytest, nbval and a Jupyter kernel, matplotlib,
# and pycontain's one dependency, pyroute2 (lesson 08)
wheels=(pytest nbval ipykernel nbclient nbformat matplotlib ipywidgets pyroute2)

log_tag=cgroup2-guest
# shellcheck source=tools/lab-vm/common.sh
source "$project/tools/lab-vm/common.sh"  # log, die, need, mirror

build_image() {
  local root="$cache/root.partial"
  log "building the guest image (Debian $suite, once; about 2-4 minutes)"
  rm -rf "$root" "$cache/image.raw"
  mkdir -p "$cache"
  debootstrap --variant=minbase --include="$debs" "$suite" "$root" "$(mirror)" >"$cache/debootstrap.log" 2>&1 \
    || { tail -n 20 "$cache/debootstrap.log" >&2; exit 2; }
  # The guest's Python packages: wheels for its Python (3.13) with their dependencies, installed
  # by the host's pip into a plain directory (the guest has no network and needs no pip).
  local py
  py=$(chroot "$root" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  "$project/.venv/bin/python" -m pip install -q --target "$root/opt/pytest" --only-binary=:all: \
    --implementation cp --python-version "$py" --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform linux_x86_64 \
    "${wheels[@]}" \
    >"$cache/pip.log" 2>&1 || { cat "$cache/pip.log" >&2; exit 2; }
  # Their bytecode, by the guest's own interpreter, once: each run writes to a throw-away
  # snapshot of the image, so bytecode compiled during a run is lost with it, and compiling
  # pytest, IPython and matplotlib under emulation takes minutes.
  chroot "$root" python3 -m compileall -q /opt/pytest >/dev/null 2>&1
  install -m 0755 "$here/guest-boot.sh" "$root/usr/local/sbin/guest-boot"
  echo guest >"$root/etc/hostname"
  cp "$root"/boot/vmlinuz-* "$cache/vmlinuz"
  cp "$root"/boot/initrd.img-* "$cache/initrd.img"
  mkfs.ext4 -q -F -L guest -d "$root" "$cache/image.raw" 4G
  rm -rf "$root"
  echo "$recipe" >"$cache/recipe"
}

need debootstrap qemu-system-x86 e2fsprogs
if [[ ${PYCONTAIN_VM_REBUILD:-0} == 1 || ! -f $cache/image.raw || $(cat "$cache/recipe" 2>/dev/null) != "$recipe" ]]; then
  build_image
fi
[[ ${1:-} == --image ]] && exit 0

# Not a pycontain- name in /tmp: `pycontain cleanup` sweeps those, and this one is in use.
mkdir -p "$cache/runs"
results=$(mktemp -d "$cache/runs/run.XXXXXX")
qemu_pid=
cleanup() {
  [[ -n $qemu_pid ]] && kill -9 "$qemu_pid" 2>/dev/null || true
  rm -rf "$results"
}
trap cleanup EXIT INT TERM

echo "${PYCONTAIN_VM_CGROUP:-root}" >"$results/cgroup-mode"
# The arguments travel shell-quoted; the guest's sh evaluates them back into words.
if (($#)); then printf '%q ' "$@" >"$results/args"; else echo tests/integration >"$results/args"; fi
claims=()
if [[ -n ${PYCONTAIN_VM_CLAIMS:-} ]]; then
  echo "${PYCONTAIN_VM_ORDER:-forward}" >"$results/claims"
  claims=(-virtfs "local,path=$PYCONTAIN_VM_CLAIMS,mount_tag=claims,security_model=none")
fi
log "booting (qemu TCG, 2 CPUs, 2 GiB); the guest's output follows"
start=$SECONDS
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -machine q35 -smp 2 -m 2048 \
  -kernel "$cache/vmlinuz" -initrd "$cache/initrd.img" \
  -append "console=ttyS0 root=/dev/vda rw init=/usr/local/sbin/guest-boot quiet panic=-1" \
  -drive "file=$cache/image.raw,if=virtio,format=raw,snapshot=on" \
  -virtfs "local,path=$project,mount_tag=project,security_model=none,readonly=on" \
  -virtfs "local,path=$results,mount_tag=results,security_model=none" "${claims[@]}" \
  -chardev "stdio,id=console,logfile=$results/console" -serial chardev:console \
  -nographic -nodefaults -no-reboot </dev/null &
qemu_pid=$!
wait "$qemu_pid" || true
qemu_pid=
status=$(cat "$results/status" 2>/dev/null || sed -n 's/^cgroup2-guest-status: \([0-9]*\).*/\1/p' "$results/console" | tail -n1)
if [[ -z $status ]]; then
  log "the guest reported no exit status (crashed or timed out after $((SECONDS - start)) s)"
  exit 3  # lanes.sh boots a crashed lane once more
fi
log "guest exit status $status after $((SECONDS - start)) s"
exit "$status"
