#!/usr/bin/env bash
# Build the offline bundle for the lab VM (`make offline-bundle`): everything vagrant/provision.sh
# would download, for a Debian 13 amd64 guest, so a workshop can provision with no network (the
# bundle goes on USB sticks; `vagrant up` finds it in vagrant/bundle/, or at PYCONTAIN_BUNDLE).
#
#   debs/       the lab's Debian 13 packages with all their dependencies (resolved against an
#               empty system, so any Debian 13 box has what it lacks), and a Packages index
#   wheels/     Python 3.13 wheels of pycontain's dependencies and its [lab] extra, plus the
#               build backend `pip install -e` needs
#   bundle.info suite, architecture, Python version;  MANIFEST.sha256  checksums of every file
#
# Runs on a connected Debian or Ubuntu machine (any release: Debian 13's packages are fetched
# with an apt configuration of their own, from the Debian mirror this host's apt uses).
# Usage: tools/lab-vm/offline-bundle.sh [OUT]   (default: vagrant/bundle in the checkout)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
log_tag=offline-bundle
# shellcheck source=tools/lab-vm/common.sh
. "$here/common.sh"
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

out=${1:-$project/vagrant/bundle}
suite=trixie
arch=amd64
py=3.13
python=${PYTHON:-$project/.venv/bin/python}
[[ -x $python ]] || python=python3

need dpkg-dev
mapfile -t debs < <(bash "$project/vagrant/provision.sh" --print-debs)
partial=$out.partial
rm -rf "$partial"
mkdir -p "$partial/debs" "$partial/wheels" "$partial/apt/state/lists/partial" "$partial/apt/cache"

# --- .debs: a private apt that believes it is an empty Debian 13 amd64 system -------------------
apt=$partial/apt
: >"$apt/status"
echo "deb $(mirror) $suite main" >"$apt/sources.list"
cat >"$apt/apt.conf" <<EOF
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
Dir::State "$apt/state";
Dir::State::status "$apt/status";
Dir::Cache "$apt/cache";
Dir::Cache::archives "$partial/debs";
Dir::Etc::sourcelist "$apt/sources.list";
Dir::Etc::sourceparts "-";
Dir::Etc::preferencesparts "-";
APT::Install-Recommends "false";
Debug::NoLocking "true";
EOF
log "resolving ${debs[*]} for Debian 13 ($suite, $arch)"
APT_CONFIG=$apt/apt.conf apt-get update -qq
mkdir -p "$partial/debs/partial"
APT_CONFIG=$apt/apt.conf apt-get install -qq -y --download-only "${debs[@]}" >/dev/null
rm -rf "$partial/debs/partial" "$partial/debs/lock"
(cd "$partial/debs" && dpkg-scanpackages -m . 2>/dev/null >Packages)
rm -rf "$apt"

# --- wheels for the guest's Python ----------------------------------------------------------------
log "downloading wheels of pycontain[lab] for Python $py ($arch)"
"$python" - "$project/pyproject.toml" >"$partial/wheels/requirements.txt" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for req in project.get("dependencies", []) + project["optional-dependencies"]["lab"]:
    print(req)
EOF
backend=$("$python" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' "$project/pyproject.toml")
printf '%s\n' "$backend" >>"$partial/wheels/requirements.txt"
"$python" -m pip download -q --disable-pip-version-check --dest "$partial/wheels" \
  --only-binary=:all: --implementation cp --python-version "$py" --abi "cp${py/./}" --abi abi3 --abi none \
  --platform manylinux_2_39_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform linux_x86_64 \
  --platform any -r "$partial/wheels/requirements.txt" \
  2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)

printf 'suite=%s\narch=%s\npython=%s\nmade=%s\n' "$suite" "$arch" "$py" "$(date -u +%F)" >"$partial/bundle.info"
(cd "$partial" && find debs wheels bundle.info -type f -print0 | sort -z | xargs -0 sha256sum >MANIFEST.sha256)
rm -rf "$out"
mv "$partial" "$out"
log "made $out: $(find "$out/debs" -name '*.deb' | wc -l) .debs, $(find "$out/wheels" -name '*.whl' | wc -l) wheels, $(du -sh "$out" | cut -f1)"
