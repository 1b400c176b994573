#!/usr/bin/env bash
# `make test-vagrant`: prove the lab VM for real on this machine, with no network in the guest.
#
#   1. static: bash -n and shellcheck on every script, `vagrant validate`, and the Vagrantfile's
#      refusals of bad settings (too little memory, an unknown libvirt driver, a missing bundle);
#   2. a Debian 13 libvirt box built offline (build-box.sh) and the offline bundle
#      (offline-bundle.sh), both cached in /var/cache/pycontain/lab-vm;
#   3. libvirt's daemons started by hand inside the network namespace pycontain-vagrant, so its
#      bridge, dnsmasq, NAT rules and the VM exist only there (the guest reaches no registry:
#      provisioning is offline); qemu.conf set for this host and restored afterwards;
#   4. `vagrant up --provider=libvirt` of the project's own Vagrantfile with the local box
#      (PYCONTAIN_BOX_URL), the qemu driver (TCG) and the bundle; guest_checks.py inside; the
#      forwarded port answers on 127.0.0.1; `vagrant provision` again leaves the state digest as
#      it was; `vagrant destroy -f`;
#   5. every daemon (by PID), pool, volume, network, box, file and the namespace removed again.
#
# Usage: tools/lab-vm/test-vagrant.sh [--static]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
log_tag=test-vagrant
# shellcheck source=tools/lab-vm/common.sh
. "$here/common.sh"

cache=${PYCONTAIN_VM_CACHE:-/var/cache/pycontain/lab-vm}
box=$cache/debian13.box
bundle=$cache/bundle
netns=pycontain-vagrant
t0=$SECONDS
lap() { log "$1 ($((SECONDS - t0)) s since the start)"; }
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

# --- 1. static checks ---------------------------------------------------------------------------
static() {
  need shellcheck vagrant vagrant-libvirt
  local scripts
  mapfile -t scripts < <(find "$project/vagrant" "$project/tools" -name '*.sh' | sort)
  for s in "${scripts[@]}"; do bash -n "$s"; done
  (cd "$project" && shellcheck -x -S warning "${scripts[@]}")
  log "bash -n and shellcheck: ${#scripts[@]} scripts clean"
  local tmp rc
  tmp=$(mktemp -d /tmp/lab-vm-validate.XXXXXX)
  export VAGRANT_HOME=$tmp/home VAGRANT_DOTFILE_PATH=$tmp/dot VAGRANT_CHECKPOINT_DISABLE=1
  (cd "$project/vagrant" && vagrant validate >/dev/null) || { rm -rf "$tmp"; die "vagrant validate failed"; }
  # bad settings must be refused with a message naming the variable
  for bad in PYCONTAIN_MEMORY=512 PYCONTAIN_LIBVIRT_DRIVER=xen PYCONTAIN_CPUS=two \
             PYCONTAIN_PORT=80 "PYCONTAIN_BUNDLE=$tmp"; do
    rc=0
    out=$(cd "$project/vagrant" && env "$bad" vagrant validate 2>&1) || rc=$?
    if [[ $rc == 0 || $out != *"${bad%%=*}"* ]]; then
      rm -rf "$tmp"
      die "vagrant validate accepted $bad (rc $rc): $out"
    fi
  done
  unset VAGRANT_HOME VAGRANT_DOTFILE_PATH
  log "vagrant validate: the Vagrantfile is valid and refuses 5 bad settings by name"
  # provision.sh refuses a missing or partly copied bundle before it changes anything, and says
  # how to make one (it runs these checks before it needs systemd, so this host can run them)
  mkdir -p "$tmp/partial/debs"
  echo x >"$tmp/partial/debs/a.deb"
  (cd "$tmp/partial" && sha256sum debs/a.deb >MANIFEST.sha256 && echo y >>debs/a.deb)
  for b in "$tmp/missing" "$tmp/partial"; do
    rc=0
    out=$(PYCONTAIN_SRC=$project PYCONTAIN_BUNDLE=$b bash "$project/vagrant/provision.sh" 2>&1) || rc=$?
    [[ $rc != 0 && $out == *"make offline-bundle"* ]] || { rm -rf "$tmp"; die "provision.sh accepted the bad bundle $b (rc $rc): $out"; }
  done
  rm -rf "$tmp"
  log "provision.sh: a missing and a damaged bundle refused, with how to make one"
}
static
[[ ${1:-} == --static ]] && exit 0

# --- 2. box and bundle --------------------------------------------------------------------------
need vagrant vagrant-libvirt libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients \
  qemu-system-x86 qemu-utils dnsmasq-base iptables openssh-client rsync
bash "$here/build-box.sh" "$box"
key=$( { sha256sum "$project/pyproject.toml" "$here/offline-bundle.sh"; bash "$project/vagrant/provision.sh" --print-debs; } | sha256sum)
if [[ $(cat "$bundle.key" 2>/dev/null) != "$key" || ! -f $bundle/MANIFEST.sha256 ]]; then
  bash "$here/offline-bundle.sh" "$bundle"
  echo "$key" >"$bundle.key"
fi
lap "box and bundle ready"

# --- 3. libvirt in a network namespace ---------------------------------------------------------
for f in /run/libvirtd.pid /run/virtlogd.pid; do
  if [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then
    die "a libvirt daemon already runs here ($f): this test starts its own; stop that one first"
  fi
done
ip netns list | grep -qw "$netns" && die "the network namespace $netns exists: a test still running, or a leftover (ip netns delete $netns)"
run=$(mktemp -d "$cache/run.XXXXXX")
libvirtd_pid="" virtlogd_pid=""
find /etc/libvirt /var/lib/libvirt 2>/dev/null | sort >"$run/files.before"
cp -a /etc/libvirt/qemu.conf "$run/qemu.conf.orig"
qemu_conf_sum=$(sha256sum </etc/libvirt/qemu.conf)

teardown() {
  set +e
  log "tearing down"
  if [[ -n $libvirtd_pid ]]; then
    (cd "$project/vagrant" && ip netns exec "$netns" vagrant destroy -f >/dev/null 2>&1)
    (cd "$project/vagrant" && vagrant box remove -f --all pycontain-test/debian-13 >/dev/null 2>&1)
    for d in $(virsh -q list --all --name 2>/dev/null); do virsh -q destroy "$d"; virsh -q undefine "$d" --remove-all-storage; done >/dev/null 2>&1
    for n in $(virsh -q net-list --all --name 2>/dev/null); do virsh -q net-destroy "$n"; virsh -q net-undefine "$n"; done >/dev/null 2>&1
    for p in $(virsh -q pool-list --all --name 2>/dev/null); do
      for v in $(virsh -q vol-list "$p" 2>/dev/null | awk '{print $1}'); do virsh -q vol-delete "$v" --pool "$p"; done
      virsh -q pool-destroy "$p"; virsh -q pool-undefine "$p"
    done >/dev/null 2>&1
  fi
  for pid in $libvirtd_pid $virtlogd_pid; do
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null
  done
  cp -a "$run/qemu.conf.orig" /etc/libvirt/qemu.conf
  # every file libvirt made under /etc/libvirt and /var/lib/libvirt goes again
  find /etc/libvirt /var/lib/libvirt 2>/dev/null | sort >"$run/files.after"
  comm -13 "$run/files.before" "$run/files.after" | sort -r | while read -r f; do
    if [[ -d $f ]]; then rmdir "$f"; else rm -f "$f"; fi
  done
  rm -f /run/libvirtd.pid /run/virtlogd.pid
  ip netns delete "$netns" 2>/dev/null
  rm -rf "$run"
}
trap teardown EXIT
trap 'exit 130' INT TERM

ip netns add "$netns"
ip -n "$netns" link set lo up
# No systemd here to give libvirt a cgroup, and no unprivileged qemu user needed: run qemu as root
# with no cgroups and no security driver (this file is restored by teardown).
cat >>/etc/libvirt/qemu.conf <<'EOF'
# --- added by tools/lab-vm/test-vagrant.sh for its run; restored afterwards ---
cgroup_controllers = [ ]
user = "root"
group = "root"
security_driver = "none"
EOF
ip netns exec "$netns" virtlogd >"$run/virtlogd.log" 2>&1 &
virtlogd_pid=$!
ip netns exec "$netns" libvirtd >"$run/libvirtd.log" 2>&1 &
libvirtd_pid=$!
for _ in $(seq 100); do virsh -q version >/dev/null 2>&1 && break; sleep 0.2; done
virsh -q version >/dev/null 2>&1 || { cat "$run/libvirtd.log" >&2; die "libvirtd did not start"; }
lap "libvirtd $libvirtd_pid and virtlogd $virtlogd_pid up in netns $netns"

# --- 4. vagrant up, checks, provision again, destroy --------------------------------------------
export VAGRANT_HOME=$run/vagrant.d VAGRANT_DOTFILE_PATH=$run/dot VAGRANT_CHECKPOINT_DISABLE=1
export VAGRANT_DEFAULT_PROVIDER=libvirt
export PYCONTAIN_BOX=pycontain-test/debian-13 PYCONTAIN_BOX_URL=file://$box
export PYCONTAIN_LIBVIRT_DRIVER=qemu PYCONTAIN_BUNDLE=$bundle
in_ns() { (cd "$project/vagrant" && ip netns exec "$netns" "$@"); }
in_ns vagrant up --provider=libvirt 2>&1 | tee "$run/up.log"
[[ ${PIPESTATUS[0]} == 0 ]] || die "vagrant up failed"
grep -q 'pycontain: JupyterLab is at http://127.0.0.1:[0-9]*/lab?token=[0-9a-f]\{48\}' "$run/up.log" \
  || die "vagrant up did not print the JupyterLab URL with its token"
lap "vagrant up done"

in_ns vagrant ssh -c 'sudo /opt/pycontain/.venv/bin/python /opt/pycontain/tools/lab-vm/guest_checks.py'
lap "guest checks passed"

# The forwarded port, from this side: bound to 127.0.0.1 only, JupyterLab behind it.
in_ns ss -Hltn | grep -q '127.0.0.1:8888 ' || die "host port 8888 is not forwarded on 127.0.0.1"
in_ns ss -Hltn | grep -E -q '(0.0.0.0|\*|\[::\]):8888 ' && die "host port 8888 is open beyond 127.0.0.1"
code=$(in_ns python3 -c 'import urllib.request as u, urllib.error as e
try: u.urlopen("http://127.0.0.1:8888/api/status", timeout=30); print(200)
except e.HTTPError as x: print(x.code)')
[[ $code == 403 ]] || die "the forwarded port answered $code without a token (want 403)"
log "forwarded port 127.0.0.1:8888 -> guest JupyterLab, 403 without the token"

digest() { in_ns vagrant ssh -c 'sudo bash /vagrant/vagrant/provision.sh --digest' 2>/dev/null | tr -d '\r'; }
before=$(digest)
in_ns vagrant provision 2>&1 | tee "$run/provision2.log"
[[ ${PIPESTATUS[0]} == 0 ]] || die "vagrant provision (second run) failed"
after=$(digest)
grep -q 'provision: nothing to change' "$run/provision2.log" || die "the second provisioning changed something"
[[ -n $before && $before == "$after" ]] || die "the state digest changed on the second provisioning ($before -> $after)"
log "provisioning again: nothing changed (digest $after)"

# Provisioning interrupted halfway (the state a Ctrl-C can leave: the service stopped, its unit
# and starter half-written, the marker and pip's stamp gone): the next run recovers.
in_ns vagrant ssh -c 'sudo sh -c "systemctl stop jupyterlab; echo broken >/etc/systemd/system/jupyterlab.service; rm -f /usr/local/libexec/pycontain-jupyter /etc/pycontain/lab-vm /opt/pycontain/.venv/.pycontain-stamp"'
in_ns vagrant provision 2>&1 | tee "$run/provision3.log"
[[ ${PIPESTATUS[0]} == 0 ]] || die "vagrant provision after an interruption failed"
in_ns vagrant ssh -c 'sudo /opt/pycontain/.venv/bin/python -c "
import urllib.request; t = open(\"/etc/pycontain/jupyter-token\").read().strip()
urllib.request.urlopen(\"http://127.0.0.1:8888/api/status?token=\" + t, timeout=60)
import os; assert os.path.exists(\"/etc/pycontain/lab-vm\")"' || die "the lab did not recover from an interrupted provisioning"
log "provisioning after an interruption: recovered (service back, marker back)"

in_ns vagrant destroy -f
lap "destroyed"
teardown
trap - EXIT
leftover=()
ip netns list | grep -qw "$netns" && leftover+=("netns $netns")
for pid in $libvirtd_pid $virtlogd_pid; do kill -0 "$pid" 2>/dev/null && leftover+=("pid $pid"); done
[[ $(sha256sum </etc/libvirt/qemu.conf) == "$qemu_conf_sum" ]] || leftover+=("a changed /etc/libvirt/qemu.conf")
virsh -q list --all --name 2>/dev/null | grep -q . && leftover+=("libvirt domains")
((${#leftover[@]} == 0)) || die "left behind: ${leftover[*]}"
log "passed in $((SECONDS - t0)) s; nothing left but the cached box and bundle in $cache"
