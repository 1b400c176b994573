# shellcheck shell=bash
# Shell shared by the scripts that build guests on this host (sourced, not run): a log prefix,
# Debian packages installed on demand, and the Debian mirror this host's apt already uses.
# Callers set `log_tag` before sourcing.

log() { printf '%s: %s\n' "${log_tag:-lab-vm}" "$*" >&2; }
die() { log "$*"; exit 2; }

# Install the Debian packages that are missing, without Recommends (which would drag a kernel
# into the host's /boot).
need() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The Debian mirror this host's apt already uses: guests are built from the same registry,
# whose name we never hard-code.
mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1)
  [[ -n $uri ]] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -n1)
  [[ -n $uri ]] || die "no Debian mirror found in /etc/apt"
  echo "$uri"
}
