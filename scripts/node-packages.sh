#!/usr/bin/env bash
# Installs the Debian packages the embedded cluster's real node and its images need, only those missing:
# containerd (with its CRI plugin and ctr), runc, the CNI plugins, iptables, conntrack, iproute2, ipset (for
# the NetworkPolicy agent), and the files the images are built from (busybox-static, nginx). Cheap when all are there. Without root or apt,
# it says what is missing and returns: `kplex dev up` then runs simulated nodes only.
set -euo pipefail

PACKAGES=(containerd runc containernetworking-plugins iptables conntrack iproute2 ipset busybox-static nginx)
say() { printf '[node-packages] %s\n' "$*" >&2; }

command -v dpkg-query >/dev/null || { say "not a Debian system: install ${PACKAGES[*]} yourself for a real node"; exit 0; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
[ ${#missing[@]} = 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  say "not root, so not installing ${missing[*]}; kplex dev up will run simulated nodes only"
  exit 0
fi
say "installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
# nginx is here for its files (the nginx image). If installing it started its service, that service
# would hold port 80 on this machine: stop it and keep it from starting at boot.
if printf '%s\n' "${missing[@]}" | grep -qx nginx; then
  { invoke-rc.d nginx stop || true; update-rc.d nginx disable || true; } >/dev/null 2>&1
fi
