#!/usr/bin/env bash
# Turn a fresh Debian 13 (or 12, or Ubuntu 24.04) machine into the pycontain lab VM.
#
# One script for Vagrant (Vagrantfile), cloud-init (cloud-init.yaml) and Lima (lima.yaml). It is
# idempotent: every step first looks whether its result is already there, so a second run changes
# nothing (`provision.sh --digest` prints a digest of everything it manages; compare two runs),
# and a run interrupted halfway is finished by the next one. What it sets up:
#
#   - the Debian packages the lessons use, from the distribution's mirror or, offline, from a
#     bundle of .debs (`make offline-bundle` on a connected machine; the USB-stick path);
#   - a copy of the project in $PYCONTAIN_HOME (/opt/pycontain) with its venv and
#     `pip install -e '.[lab]'` (offline: from the bundle's wheels);
#   - the lab marker lab.preflight() looks for, and the embedded rootfs (`pycontain rootfs`);
#   - the learner's copy of the notebooks ($PYCONTAIN_WORKSPACE), never overwritten afterwards,
#     and for an instructor (PYCONTAIN_INSTRUCTOR=1) the solutions in its solutions/ folder;
#   - JupyterLab as the systemd service jupyterlab.service: root, Delegate=yes, its processes in a
#     `supervisor` subgroup (DelegateSubgroup=, systemd >= 254; older systemd: the service moves
#     itself), so pycontain owns the service's cgroup (PYCONTAIN_CGROUP_PARENT, lesson 12);
#     listening on guest port 8888 with a random token kept root-only in /etc/pycontain.
#
# Usage: provision.sh                  set up (or check) the lab
#        provision.sh --digest         print a digest of the managed state
#        provision.sh --print-debs     the Debian packages the lab needs (make offline-bundle)
#        provision.sh --sync-notebooks only copy the notebooks Jupyter serves into the workspace
# Environment: PYCONTAIN_SRC (default: the checkout this script is in), PYCONTAIN_HOME,
#   PYCONTAIN_WORKSPACE, PYCONTAIN_BUNDLE (a bundle directory; default: $PYCONTAIN_SRC/vagrant/bundle
#   when it exists), PYCONTAIN_OFFLINE=1 (refuse the network even without a bundle),
#   PYCONTAIN_LISTEN (Jupyter's address in the guest: 0.0.0.0 for Vagrant, 127.0.0.1 elsewhere),
#   PYCONTAIN_INSTRUCTOR=1 (an instructor's VM: Jupyter serves the solutions too, in
#   solutions/ beside the exercises; 0, the default, removes that folder again).
# See also: systemd.resource-control(5) (Delegate=), vagrant/README.md.
set -euo pipefail

LAB_DEBS=(python3 python3-venv busybox-static iproute2 nftables procps util-linux kmod
          e2fsprogs rsync)
SERVICE=jupyterlab.service
PORT=8888
# 0.0.0.0: Vagrant's port forward (VirtualBox NAT, libvirt) reaches the guest from outside its
# loopback; it binds the host side to 127.0.0.1. Clouds and Lima: 127.0.0.1 plus an SSH tunnel.
listen=${PYCONTAIN_LISTEN:-0.0.0.0}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${PYCONTAIN_SRC:-$(dirname "$here")}
home=${PYCONTAIN_HOME:-/opt/pycontain}
workspace=${PYCONTAIN_WORKSPACE:-/srv/lab/notebooks}
bundle=${PYCONTAIN_BUNDLE:-}
[[ -z $bundle && -d $src/vagrant/bundle ]] && bundle=$src/vagrant/bundle
etc=/etc/pycontain
unit=/etc/systemd/system/$SERVICE
starter=/usr/local/libexec/pycontain-jupyter
userns_sysctl=/etc/sysctl.d/60-pycontain-userns.conf
changed=()

say() { printf 'provision: %s\n' "$*" >&2; }
fail() { printf 'provision: error: %s\n' "$*" >&2; exit 1; }

if [[ ${1:-} == --print-debs ]]; then printf '%s\n' "${LAB_DEBS[@]}"; exit 0; fi

digest() {
  {
    dpkg-query -W -f '${Package} ${Version} ${Status}\n' 2>/dev/null | sort
    [[ -x $home/.venv/bin/python ]] && "$home/.venv/bin/python" -m pip freeze --all 2>/dev/null || true
    # (bytecode caches and Jupyter's checkpoints, and so directory times, change with use)
    find "$etc" "$unit" "$starter" "$userns_sysctl" "$workspace" "$home" \
      \( -path "$home/.venv" -o -name __pycache__ -o -name .ipynb_checkpoints \) -prune \
      -o -type d -printf '%p/ %m\n' -o -printf '%p %s %m %T@\n' 2>/dev/null | sort || true
    cat "$etc"/* "$unit" "$starter" 2>/dev/null || true
    systemctl show -p MainPID -p ActiveEnterTimestampMonotonic -p NRestarts "$SERVICE" 2>/dev/null
  } | sha256sum | cut -d' ' -f1
}
if [[ ${1:-} == --digest ]]; then digest; exit 0; fi

# What Jupyter serves ($workspace): the learner notebooks of $home/notebooks, new lessons added,
# a notebook the learner has never overwritten (reset: vagrant/README.md). The solutions stay in
# $home/notebooks/solutions, out of Jupyter's reach, unless this is an instructor's VM
# (PYCONTAIN_INSTRUCTOR=1): then they are served too, in $workspace/solutions, kept up to date
# with the checkout (an instructor's edits there are overwritten), and removed again by a
# provision with PYCONTAIN_INSTRUCTOR=0.
instructor=${PYCONTAIN_INSTRUCTOR:-0}
instructor_ok() {
  [[ $instructor == 0 || $instructor == 1 ]] \
    || fail "PYCONTAIN_INSTRUCTOR=$instructor is not 0 or 1: 1 serves the solutions too (an instructor's VM), 0 (the default) the exercises only"
}
sync_notebooks() {
  local out
  instructor_ok
  [[ -d $home/notebooks ]] || fail "no notebooks in $home/notebooks: is $src a pycontain checkout or release?"
  mkdir -p "$workspace"
  out=$(rsync -a --ignore-existing --itemize-changes --exclude=.ipynb_checkpoints \
    --exclude=/solutions "$home/notebooks/" "$workspace/")
  [[ -z $out ]] || changed+=(notebooks)
  if [[ $instructor == 1 ]]; then
    [[ -d $home/notebooks/solutions ]] \
      || fail "PYCONTAIN_INSTRUCTOR=1, but $home/notebooks/solutions does not exist: provision from the instructor release or a checkout, not the learner release"
    out=$(rsync -a --delete --itemize-changes --exclude=.ipynb_checkpoints \
      "$home/notebooks/solutions/" "$workspace/solutions/")
    [[ -z $out ]] || changed+=(solutions)
  elif [[ -e $workspace/solutions ]]; then
    rm -rf "$workspace/solutions"
    changed+=(solutions)
  fi
}
if [[ ${1:-} == --sync-notebooks ]]; then
  sync_notebooks
  say "serving in $workspace: $(cd "$workspace" && ls -d -- * 2>/dev/null | tr '\n' ' ')"
  exit 0
fi
[[ $# == 0 ]] || fail "unknown argument '$1' (accepted: --digest, --print-debs, --sync-notebooks, or none)"
instructor_ok  # before anything is made

# --- is this a machine we can make the lab on? ---------------------------------------------------
[[ $(id -u) == 0 ]] || fail "run as root (Vagrant and cloud-init do; by hand: sudo $0)"
# shellcheck source=/dev/null
. /etc/os-release
case "${ID:-}:${VERSION_ID:-}" in
  debian:12 | debian:13 | ubuntu:24.04) ;;
  *) fail "unsupported system '${PRETTY_NAME:-unknown}': the lab is tested on Debian 13 (the
  default box), Debian 12 and Ubuntu 24.04 - use one of those boxes (PYCONTAIN_BOX, vagrant/README.md)" ;;
esac
[[ -d $src/pycontain ]] || fail "no pycontain checkout at PYCONTAIN_SRC=$src (expected $src/pycontain/)"
mem_mib=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
if ((mem_mib < 1800)); then
  say "warning: only ${mem_mib} MiB of memory; the lessons want 4096 (PYCONTAIN_MEMORY=4096 vagrant reload)"
fi

# --- the offline bundle: complete, and for this system? ----------------------------------------
make_bundle="run \`make offline-bundle\` on a connected Debian/Ubuntu machine and copy its vagrant/bundle/ directory here"
if [[ -n $bundle ]]; then
  [[ -d $bundle ]] || fail "PYCONTAIN_BUNDLE=$bundle is not a directory; $make_bundle"
  [[ -f $bundle/MANIFEST.sha256 ]] || fail "the bundle $bundle has no MANIFEST.sha256 (not a bundle, or copied only in part); $make_bundle"
  if ! bad=$(cd "$bundle" && sha256sum --quiet -c MANIFEST.sha256 2>&1); then
    fail "the bundle $bundle is incomplete or damaged (copy it again, or $make_bundle):
$(printf '%s\n' "$bad" | head -n 10)"
  fi
  py=$(sed -n 's/^python=//p' "$bundle/bundle.info")
  arch=$(sed -n 's/^arch=//p' "$bundle/bundle.info")
  suite=$(sed -n 's/^suite=//p' "$bundle/bundle.info")
  [[ $arch == $(dpkg --print-architecture) ]] || fail "the bundle is for $arch, this machine is $(dpkg --print-architecture); $make_bundle"
  [[ $suite == "${VERSION_CODENAME:-}" ]] || fail "the bundle is for Debian $suite, this is ${PRETTY_NAME:-}; use the Debian 13 box or provision online"
  say "offline: packages from the bundle $bundle (python $py, $suite, $arch)"
elif [[ ${PYCONTAIN_OFFLINE:-0} == 1 ]]; then
  fail "PYCONTAIN_OFFLINE=1 but no bundle (PYCONTAIN_BUNDLE, or $src/vagrant/bundle); $make_bundle"
fi

[[ -d /run/systemd/system ]] || fail "systemd is not PID 1 here: the Jupyter service needs it"

# --- Ubuntu: AppArmor's user-namespace restriction ------------------------------------------------
# Ubuntu 23.10+ lets unprivileged processes create user namespaces only under an AppArmor profile
# that allows it (kernel.apparmor_restrict_unprivileged_userns=1). Lesson 09 shows what an
# unprivileged user namespace can do, so this throw-away VM turns the restriction off.
if [[ -e /proc/sys/kernel/apparmor_restrict_unprivileged_userns ]]; then
  want='# pycontain lab VM (vagrant/provision.sh): Ubuntu restricts unprivileged user namespaces to
# AppArmor-profiled programs; lesson 09 creates them without a profile. Fine in a throw-away VM,
# think twice on a machine you care about.
kernel.apparmor_restrict_unprivileged_userns = 0'
  if [[ $(cat "$userns_sysctl" 2>/dev/null) != "$want" ]]; then
    printf '%s\n' "$want" >"$userns_sysctl"
    changed+=(sysctl)
  fi
  if [[ $(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns) != 0 ]]; then
    sysctl -q -w kernel.apparmor_restrict_unprivileged_userns=0
    changed+=(sysctl)
  fi
fi

# --- Debian packages ----------------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
# A dpkg run interrupted earlier leaves half-configured packages: finish them first.
if [[ -n $(dpkg --audit 2>/dev/null) ]]; then
  say "finishing an interrupted dpkg run"
  dpkg --configure -a
fi
missing=()
for p in "${LAB_DEBS[@]}"; do
  [[ $(dpkg-query -W -f '${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  if [[ -n $bundle ]]; then
    # The bundle's .debs as a flat repository, in lists of their own (the system's stay as they are)
    lists=/var/lib/pycontain/apt-lists
    mkdir -p "$lists/partial"
    echo "deb [trusted=yes] file:$bundle/debs ./" >"$lists/bundle.list"
    apt_bundle=(-o "Dir::Etc::sourcelist=$lists/bundle.list" -o Dir::Etc::sourceparts=-
                -o "Dir::State::Lists=$lists" -o APT::Get::List-Cleanup=0)
    apt-get "${apt_bundle[@]}" update -qq
    apt-get "${apt_bundle[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || fail "the bundle lacks packages this system needs (above); $make_bundle"
  else
    apt-get update -qq || fail "apt-get update failed: no network? Provision offline with a bundle ($make_bundle)"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  changed+=(packages)
fi

# --- the project, its venv, pycontain[lab] -----------------------------------------------------
if [[ $(realpath "$src") != $(realpath -m "$home") ]]; then
  mkdir -p "$home"
  # only files that differ are copied (directory times change with use: bytecode caches); the
  # venv and pip's egg-info are excluded, so --delete keeps them
  out=$(rsync -a --omit-dir-times --delete --itemize-changes --exclude=/.venv --exclude=/.git --exclude=/.vagrant \
    --exclude=/vagrant/bundle --exclude=/vagrant/.lab-url --exclude='__pycache__' \
    --exclude='*.egg-info' --exclude=.ipynb_checkpoints "$src/" "$home/")
  [[ -z $out ]] || changed+=(project)
fi
venv=$home/.venv
if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$venv"  # absent, or left broken by an interrupted run
  python3 -m venv "$venv"
  changed+=(venv)
fi
# Reinstall when pyproject.toml or the bundle changed; the stamp is written only on success.
stamp=$( { sha256sum "$home/pyproject.toml"; [[ -z $bundle ]] || cat "$bundle/MANIFEST.sha256"; } | sha256sum | cut -d' ' -f1)
if [[ $(cat "$venv/.pycontain-stamp" 2>/dev/null) != "$stamp" ]] || ! "$venv/bin/python" -c 'import pycontain, jupyterlab' 2>/dev/null; then
  say "installing pycontain[lab] into $venv"
  pip_from=()
  [[ -z $bundle ]] || pip_from=(--no-index --find-links "$bundle/wheels")
  # --no-compile: Python writes the bytecode of what is imported on first use (as root); compiling
  # all of JupyterLab's dependencies up front takes minutes in an emulated VM
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q --no-compile "${pip_from[@]}" \
    --config-settings editable_mode=compat -e "${home}[lab]" \
    || fail "pip could not install pycontain[lab]${bundle:+ from the wheels of the bundle (made for another Python? $make_bundle)}"
  # the lean console scripts over pip's: `pycontain` starts as python -I -S (pycontain.launcher)
  "$venv/bin/python" -m pycontain.launcher "$venv/bin" || fail "could not write the pycontain commands into $venv/bin"
  echo "$stamp" >"$venv/.pycontain-stamp"
  changed+=(python)
fi

# --- the lab marker, the embedded rootfs, the learner's notebooks ---------------------------------
install -d -m 0755 "$etc"
marker="pycontain lab VM: the lessons may change kernel state here (made by vagrant/provision.sh)"
if [[ $(cat "$etc/lab-vm" 2>/dev/null) != "$marker" ]]; then
  echo "$marker" >"$etc/lab-vm"
  changed+=(marker)
fi
# `pycontain` on PATH, as the README writes it
if [[ $(readlink /usr/local/bin/pycontain) != "$venv/bin/pycontain" ]]; then
  ln -sfn "$venv/bin/pycontain" /usr/local/bin/pycontain
  changed+=(path)
fi
# Built once, and again when it no longer matches how this pycontain builds it (its record).
record=/var/lib/pycontain/rootfs/etc/pycontain-rootfs.json
before=$(cat "$record" 2>/dev/null || true)
"$venv/bin/pycontain" rootfs >/dev/null
[[ $(cat "$record" 2>/dev/null) == "$before" ]] || changed+=(rootfs)
sync_notebooks  # the learner's notebooks, and the solutions for an instructor

# --- the token and the Jupyter service ----------------------------------------------------------
umask 077
if [[ ! -s $etc/jupyter-token ]]; then
  od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$etc/jupyter-token.tmp"
  mv "$etc/jupyter-token.tmp" "$etc/jupyter-token"
  changed+=(token)
fi
token=$(cat "$etc/jupyter-token")
# an environment file, so the token is not in `ps` output
if [[ $(cat "$etc/jupyter.env" 2>/dev/null) != "JUPYTER_TOKEN=$token" ]]; then
  echo "JUPYTER_TOKEN=$token" >"$etc/jupyter.env"
  changed+=(token)
fi
# the URL as the guest sees it (Vagrant may forward another host port: its trigger says which)
if [[ $(cat "$etc/jupyter-url" 2>/dev/null) != "http://127.0.0.1:$PORT/lab?token=$token" ]]; then
  echo "http://127.0.0.1:$PORT/lab?token=$token" >"$etc/jupyter-url"
  changed+=(token)
fi
umask 022

# Write $1 from stdin when its content differs; remember that it changed.
put() {
  local new
  new=$(cat)
  if [[ $(cat "$1" 2>/dev/null) != "$new" ]]; then
    printf '%s\n' "$new" >"$1.tmp" && chmod "$2" "$1.tmp" && mv "$1.tmp" "$1"
    changed+=("$1")
  fi
}

systemd_version=$(systemctl --version | awk 'NR == 1 {print $2}')
subgroup=
((systemd_version >= 254)) && subgroup="DelegateSubgroup=supervisor"
mkdir -p "$(dirname "$starter")"
put "$starter" 0755 <<EOF
#!/bin/sh
# Start JupyterLab for the pycontain lessons (jupyterlab.service, from vagrant/provision.sh).
# The service's cgroup is delegated to pycontain (Delegate=yes), which makes its cgroups there;
# cgroup v2 forbids processes in a cgroup whose children have controllers, so Jupyter lives in a
# 'supervisor' subgroup: systemd puts it there (DelegateSubgroup=, systemd >= 254), or we move.
cg=/sys/fs/cgroup\$(sed -n 's/^0:://p' /proc/self/cgroup)
case "\$cg" in
  */supervisor) ;;
  *) if [ -e "\$cg/cgroup.procs" ]; then mkdir -p "\$cg/supervisor" && echo \$\$ >"\$cg/supervisor/cgroup.procs"; fi ;;
esac
exec $venv/bin/jupyter lab --allow-root --no-browser --ip=$listen --port=$PORT \\
  --ServerApp.port_retries=0 --ServerApp.root_dir=$workspace
EOF
put "$unit" 0644 <<EOF
# JupyterLab for the pycontain lessons, as root (the lessons unshare and mount), on port $PORT,
# token in $etc/jupyter-token. Made by vagrant/provision.sh; edits here are overwritten.
[Unit]
Description=JupyterLab for the pycontain lessons
After=network.target

[Service]
ExecStart=$starter
EnvironmentFile=$etc/jupyter.env
Environment=HOME=/root PYCONTAIN_CGROUP_PARENT=/system.slice/$SERVICE
WorkingDirectory=$workspace
Delegate=yes
$subgroup
Restart=on-failure
RestartSec=3

[Install]
WantedBy=multi-user.target
EOF

restart=0
for c in "${changed[@]}"; do
  case $c in token | python | "$unit" | "$starter") restart=1 ;; esac
done
[[ " ${changed[*]} " == *" $unit "* ]] && systemctl daemon-reload
if ! systemctl is-enabled -q "$SERVICE" 2>/dev/null; then
  systemctl enable -q "$SERVICE" 2>/dev/null
  changed+=(enabled)
fi
if ((restart)) || ! systemctl is-active -q "$SERVICE"; then
  systemctl restart "$SERVICE"
  changed+=(started)
fi

# --- wait until it answers (slow under emulation) -------------------------------------------------
answers() {
  "$venv/bin/python" - "$token" <<'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:8888/api/status?token={sys.argv[1]}", timeout=5)
except Exception:
    sys.exit(1)
EOF
}
for _ in $(seq 1 150); do
  answers && break
  systemctl is-active -q "$SERVICE" || systemctl is-activating -q "$SERVICE" 2>/dev/null || true
  sleep 2
done
answers || fail "JupyterLab does not answer on port $PORT; see: journalctl -u $SERVICE"

url=$(cat "$etc/jupyter-url")
# Shares that write through to the host (VirtualBox, VMware, Parallels, Lima) also get the URL.
case $(findmnt -n -o FSTYPE --target "$src" 2>/dev/null) in
  vboxsf | prl_fs | fuse.vmhgfs-fuse | 9p | virtiofs | fuse.sshfs)
    (umask 077; echo "$url" >"$src/vagrant/.lab-url") 2>/dev/null || true ;;
esac

if ((${#changed[@]})); then
  say "changed: $(printf '%s\n' "${changed[@]}" | sort -u | tr '\n' ' ')"
else
  say "nothing to change"
fi
say "JupyterLab answers on guest port $PORT (root, delegated cgroup /system.slice/$SERVICE)."
say "open: $url   (with Vagrant the host port may differ; later: sudo cat $etc/jupyter-url)"
