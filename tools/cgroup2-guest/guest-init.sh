#!/bin/sh
# Runs as PID 1 in the cgroup-v2 guest (from guest-boot): set the machine up like the lab VM's
# kernel view, run pytest on the read-only checkout, write its exit status, power off.
mount -t devpts devpts /dev/pts 2>/dev/null || { mkdir -p /dev/pts && mount -t devpts devpts /dev/pts; }
mkdir -p /dev/shm /dev/mqueue
mount -t tmpfs tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
# Hand every controller to the children, as systemd does on the lab VM.
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
done
# Keep the kernel from patching its own text during the tests. Whenever the number of cpuset
# cgroups goes from 0 to 1 or back, the kernel flips a static key (cpusets_enabled, read in
# every page allocation) by writing an int3 over the instruction first; under TCG a vCPU has
# then executed that int3 after the patch was complete, a kernel panic ("Oops: int3" in
# __alloc_pages) at the same test every run. One cgroup kept for the whole run (the root's
# children have a cpuset) holds the key on; clsact on lo does the same for tc's ingress and
# egress keys (lesson 17's qdiscs come and go).
mkdir -p /sys/fs/cgroup/guest-static-keys
tc qdisc add dev lo clsact 2>/dev/null
# PYCONTAIN_VM_CGROUP=delegated (on the host) runs the tests like the lab VM's Jupyter: a systemd
# service with Delegate=yes and DelegateSubgroup=, its processes in a subgroup, the service's own
# cgroup pycontain's to use. The default runs them in the root cgroup.
if [ "$(cat /mnt/results/cgroup-mode 2>/dev/null)" = delegated ]; then
  service=/sys/fs/cgroup/system.slice/lab.service
  mkdir -p "$service/supervisor"
  for c in $(cat /sys/fs/cgroup/system.slice/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/system.slice/cgroup.subtree_control 2>/dev/null
  done
  echo $$ > "$service/supervisor/cgroup.procs"
  export PYCONTAIN_CGROUP_PARENT=/system.slice/lab.service
fi
ip link set lo up
# The loop devices of lesson 16: on the lab VM, udev's static /dev/loop-control node
# loads the loop module on first use; this guest has no udev, so load it here.
modprobe loop 2>/dev/null
hostname guest
echo "guest: $(uname -r), $(python3 --version), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control), tests in $(cut -d: -f3 /proc/self/cgroup)"

# A copy of the checkout on the guest's own disk (a few MB; the disk is a throw-away snapshot):
# the 9p share is read-only, so Python could cache no bytecode there and every interpreter the
# tests start (each container's init, each notebook kernel) compiled pycontain again, which
# under TCG emulation cost more than most tests themselves.
mkdir -p /srv/project
tar -C /mnt/project --exclude=./.git --exclude=./.venv --exclude='*/__pycache__' -cf - . \
  | tar -C /srv/project -xf - || exit 1
cd /srv/project || exit 1
# the commands pip would install beside python, where lesson 24 and its tests look for them
PYTHONPATH=/srv/project:/opt/pytest \
  python3 -m pycontain.launcher "$(dirname "$(command -v python3)")" || exit 1
eval "set -- $(cat /mnt/results/args)"
export HOME=/root MPLCONFIGDIR=/tmp/matplotlib MPLBACKEND=Agg
# `run.sh --run SCRIPT ARGS...`: a Python script of the checkout instead of the tests (the
# benchmarks of bench/, measured on cgroup v2)
if [ "$1" = --run ]; then
  shift
  PYCONTAIN_ALLOW_HOST=1 PYTHONPATH=/opt/pytest:/srv/project python3 "$@"
  status=$?
  echo "cgroup2-guest-status: $status"
  echo $status > /mnt/results/status
  sync
  echo o > /proc/sysrq-trigger
  while :; do sleep 1; done
fi
# Sharing the suite with another guest (lanes.sh): claim each file before running it (shard.py).
if [ -f /mnt/results/claims ]; then
  mkdir -p /mnt/claims
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 claims /mnt/claims || exit 1
  PYCONTAIN_SHARD_ORDER=$(cat /mnt/results/claims)
  export PYCONTAIN_SHARD_DIR=/mnt/claims PYCONTAIN_SHARD_ORDER
  set -- -p shard "$@"
fi
# pycontain itself from the checkout: the notebooks' kernels start in notebooks/, not here.
PYCONTAIN_ALLOW_HOST=1 PYTHONPATH=/opt/pytest:/srv/project:/srv/project/tools/cgroup2-guest NO_COLOR=1 \
  python3 -m pytest -p no:cacheprovider -q -o addopts="-ra" "$@"
status=$?
# The status goes to the results share and, in case a test broke that mount, to the console too.
echo "cgroup2-guest-status: $status"
echo $status > /mnt/results/status || grep -v ' - cgroup2 ' /proc/self/mountinfo
sync
echo o > /proc/sysrq-trigger
while :; do sleep 1; done  # PID 1 must not exit before the power goes off
