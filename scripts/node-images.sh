#!/usr/bin/env bash
# Builds the container images the embedded cluster's real node runs, from files on this machine, because
# no image registry is reachable here: pause (the pod sandbox), nginx (Debian's nginx with its welcome
# page on :80), busybox (Debian's busybox-static) and registry.k8s.io/kubectl (the built kubectl beside
# busybox); and, under their upstream names, the images of a tenant control plane run as pods (provider
# `cluster`): registry.k8s.io/kube-apiserver, kube-controller-manager, etcd and coredns/coredns, each the
# built static binary at the path the upstream image has it. Each is an OCI image layout in one tar (one gzip layer, config, manifest, index.json), named
# in its index as people type it, so `ctr -n k8s.io images import` makes it available under that name.
#
# Writes $BIN/images/<name>.tar (beside the Kubernetes binaries); an image already there is kept.
# Needs: busybox-static and nginx (Debian packages; scripts/node-packages.sh installs them), and kubectl in
# $BIN. An image whose files are missing is skipped with a line saying why (`kplex dev up` then runs
# simulated nodes only). Prints the image folder as its last line of stdout; progress goes to stderr.
set -euo pipefail

K8S_VERSION="${KPLEX_K8S_VERSION:-v1.35.4}"
CACHE="${KPLEX_CACHE_DIR:-$HOME/.cache/kplex}"
BIN="${KPLEX_BIN_DIR:-$CACHE/bin/$K8S_VERSION}"
OUT="$BIN/images"
# The pause image containerd's CRI uses for pod sandboxes (its config names it).
PAUSE_REF="registry.k8s.io/pause:3.10.1"
BUSYBOX=/bin/busybox

say() { printf '[node-images] %s\n' "$*" >&2; }
mkdir -p "$OUT"
# shellcheck source=scripts/oci-image.sh
source "$(dirname "$0")/oci-image.sh"

# An image tar counts as present only if its index can be read, so a half-written one is rebuilt.
present() { tar -tf "$OUT/$1.tar" index.json >/dev/null 2>&1; }

# Copies busybox in and links every applet where Debian's busybox puts it (sh, wget, nslookup, httpd, …).
add_busybox() {
  local root=$1 applet
  install -D -m 0755 "$BUSYBOX" "$root/bin/busybox"
  while read -r applet; do
    [ -e "$root/$applet" ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -s /bin/busybox "$root/$applet"
  done < <("$BUSYBOX" --list-full)
}

add_etc() {
  local root=$1
  mkdir -p "$root/etc" "$root/tmp" "$root/root" "$root/var/run"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n' >"$root/etc/group"
}

# Copies a dynamically linked program and the libraries ldd names for it.
add_program() {
  local root=$1 prog=$2 lib
  install -D -m 0755 "$prog" "$root$prog"
  for lib in $(ldd "$prog" | grep -oE '/[^ ]+'); do
    install -D -m 0755 "$lib" "$root$lib"
  done
}

build_pause() {
  local root=$1
  install -D -m 0755 "$BUSYBOX" "$root/bin/busybox"
  # A sandbox only holds the pod's namespaces open; busybox sleep does that as well as Kubernetes' pause.
  write_image pause "$PAUSE_REF" "$root" '["/bin/busybox","sleep","infinity"]' 'null'
}

build_busybox() {
  local root=$1
  add_busybox "$root"
  add_etc "$root"
  write_image busybox docker.io/library/busybox:latest "$root" 'null' '["sh"]'
}

build_nginx() {
  local root=$1
  add_busybox "$root" # what people exec into an nginx pod: sh, hostname, ls, cat
  add_etc "$root"
  add_program "$root" /usr/sbin/nginx
  install -D -m 0644 /etc/nginx/mime.types "$root/etc/nginx/mime.types"
  install -D -m 0644 /usr/share/nginx/html/index.html "$root/usr/share/nginx/html/index.html"
  mkdir -p "$root/var/lib/nginx" "$root/var/log/nginx" "$root/run"
  # As the upstream image does: the access log goes to the container's stdout, errors to stderr.
  cat >"$root/etc/nginx/nginx.conf" <<'EOF'
user www-data;
worker_processes 1;
error_log stderr notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log /dev/stdout combined;
  sendfile on;
  server {
    listen 80 default_server;
    root /usr/share/nginx/html;
    index index.html;
  }
}
EOF
  write_image nginx docker.io/library/nginx:latest "$root" 'null' '["/usr/sbin/nginx","-g","daemon off;"]'
}

build_kubectl() {
  local root=$1
  add_busybox "$root"
  add_etc "$root"
  install -D -m 0755 "$BIN/kubectl" "$root/bin/kubectl"
  write_image kubectl "registry.k8s.io/kubectl:$K8S_VERSION" "$root" '["/bin/kubectl"]' 'null'
}

# A static Go binary alone (and /etc/passwd), at the path and with the entrypoint of the upstream image.
build_static() {
  local name=$1 ref=$2 path=$3 root=$4
  install -D -m 0755 "$BIN/$name" "$root$path"
  add_etc "$root"
  write_image "$name" "$ref" "$root" "[\"$path\"]" 'null'
}
ETCD_VERSION=$([ -x "$BIN/etcd" ] && "$BIN/etcd" --version | sed -n 's/^etcd Version: //p' || true)
COREDNS_VERSION=$([ -x "$BIN/coredns" ] && "$BIN/coredns" -version | sed -n 's/^CoreDNS-//p' || true)
build_kube-apiserver() { build_static kube-apiserver "registry.k8s.io/kube-apiserver:$K8S_VERSION" /usr/local/bin/kube-apiserver "$1"; }
build_kube-controller-manager() { build_static kube-controller-manager "registry.k8s.io/kube-controller-manager:$K8S_VERSION" /usr/local/bin/kube-controller-manager "$1"; }
build_etcd() { build_static etcd "registry.k8s.io/etcd:$ETCD_VERSION-0" /usr/local/bin/etcd "$1"; }
build_coredns() { build_static coredns "registry.k8s.io/coredns/coredns:v$COREDNS_VERSION" /coredns "$1"; }

# The image needs a static busybox: Debian's busybox package puts a dynamic one at the same path.
static_busybox() { [ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1; }

for name in pause busybox nginx kubectl kube-apiserver kube-controller-manager etcd coredns; do
  present "$name" && continue
  case $name in
    kube-*|etcd|coredns) [ -x "$BIN/$name" ] || { say "skipped $name: $BIN/$name is missing (scripts/k8s-binaries.sh builds it)"; continue; } ;;
    *) static_busybox || { say "skipped $name: no static $BUSYBOX (Debian package busybox-static)"; continue; } ;;
  esac
  case $name in
    nginx) [ -x /usr/sbin/nginx ] || { say "skipped nginx: /usr/sbin/nginx is missing (Debian package nginx)"; continue; } ;;
    kubectl) [ -x "$BIN/kubectl" ] || { say "skipped kubectl: $BIN/kubectl is missing (scripts/k8s-binaries.sh builds it)"; continue; } ;;
  esac
  rootfs=$(mktemp -d "$OUT/.rootfs-$name.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  "build_$name" "$rootfs"
  rm -rf "$rootfs"
  trap - EXIT
done
echo "$OUT"
