#!/usr/bin/env bash
# Finds or builds the Kubernetes programs kplex runs: kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd and kwok (plus kwok's stage files).
#
# Looks in $KPLEX_BIN_DIR (default ~/.cache/kplex/bin/<k8s version>/); builds from source through the Go
# module proxy only what is missing. Idempotent: with a warm cache it returns in about a second.
# Prints the binary directory as its last line of stdout; progress and logs go to stderr.
#
# Recipe: shared/k8s-binaries.md. What had to change against it:
# - v1.35.4 is the newest v1.35 patch the module proxy serves here (v1.35.7 is not listed).
# - the staging replace list is derived from kubernetes' own go.mod, not typed in.
set -euo pipefail

K8S_VERSION="${KPLEX_K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${KPLEX_ETCD_VERSION:-v3.6.5}" # what k8s.io/apiserver v0.35.x requires
KWOK_VERSION="${KPLEX_KWOK_VERSION:-v0.8.0}"

CACHE="${KPLEX_CACHE_DIR:-$HOME/.cache/kplex}"
BIN="${KPLEX_BIN_DIR:-$CACHE/bin/$K8S_VERSION}"
BUILD="$CACHE/build/k8s-$K8S_VERSION"
LOG="$CACHE/build/build-$K8S_VERSION.log"
K8S_PROGRAMS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

mkdir -p "$BIN" "$BUILD"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

say() { printf '[k8s-binaries] %s\n' "$*" >&2; }
fail() {
  say "FAILED: $*"
  say "last lines of $LOG:"
  tail -n 30 "$LOG" >&2 || true
  exit 1
}
# Runs a step with a timer; the full output goes to the log file.
step() {
  local name=$1; shift
  local start=$SECONDS
  say "$name ..."
  # Each step function returns non-zero on its first failing command (set -e does not apply under ||).
  { echo "=== $name"; "$@"; } >>"$LOG" 2>&1 || fail "$name"
  say "$name done in $((SECONDS - start))s"
}
# Prints a program's version; a program counts as present only if this works, so a half-written file is
# never taken for a good one.
version_of() {
  case "$(basename "$1")" in
    kubectl) "$1" version --client ;;
    *) "$1" --version ;;
  esac
}
works() { [ -x "$BIN/$1" ] && version_of "$BIN/$1" >/dev/null 2>&1; }

need_k8s=0
for p in "${K8S_PROGRAMS[@]}" etcd; do works "$p" || need_k8s=1; done
need_kwok=0
works kwok && [ -d "$BIN/kwok-stages" ] || need_kwok=1

if [ "$need_k8s" = 0 ] && [ "$need_kwok" = 0 ]; then
  say "cached in $BIN"
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { say "FAILED: no Go toolchain on PATH (needed once to build the Kubernetes binaries)"; exit 1; }
: >"$LOG"
total_start=$SECONDS

write_wrapper_module() {
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || return 1
  {
    echo "module kplex.local/k8s-build"
    echo
    echo "go 1.25.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # kubernetes requires its staging modules at v0.0.0 and replaces them with folders; the same
    # module names at the matching v0.x tag replace them here.
    local staging="v0.${K8S_VERSION#v1.}"
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } >"$BUILD/go.mod"
  echo "staging replaces: $(grep -c '^replace' "$BUILD/go.mod")"
}

build_k8s() {
  cd "$BUILD"
  local tools=()
  for p in "${K8S_PROGRAMS[@]}"; do tools+=("k8s.io/kubernetes/cmd/$p@$K8S_VERSION"); done
  go get -tool "${tools[@]}" "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
}

ldflags() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  echo "$ld"
}

link_k8s() {
  cd "$BUILD"
  local out="$BUILD/out"
  mkdir -p "$out"
  local pkgs=()
  for p in "${K8S_PROGRAMS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$p"); done
  go build -trimpath -ldflags "$(ldflags)" -o "$out/" "${pkgs[@]}"
}

link_etcd() {
  cd "$BUILD"
  go build -trimpath -ldflags "-s -w" -o "$BUILD/out/etcd" go.etcd.io/etcd/server/v3
}

# Checks each program before it enters the cache.
install_k8s() {
  local p
  for p in "${K8S_PROGRAMS[@]}" etcd; do
    version_of "$BUILD/out/$p" || return 1
    mv -f "$BUILD/out/$p" "$BIN/$p"
  done
}

build_kwok() {
  local tmp="$BUILD/kwok-out"
  mkdir -p "$tmp"
  (cd "$BUILD" && GOBIN="$tmp" GOFLAGS= go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
  version_of "$tmp/kwok" || return 1
  local src
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  [ -d "$src" ] || return 1
  rm -rf "$BIN/kwok-stages"
  mkdir -p "$BIN/kwok-stages"
  # What a simulated kubelet does: node initialize and heartbeat (with lease), and the pod lifecycle.
  local f
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    cp "$src/$f" "$BIN/kwok-stages/" || return 1
  done
  ls "$BIN/kwok-stages"
  mv -f "$tmp/kwok" "$BIN/kwok"
}

if [ "$need_k8s" = 1 ]; then
  say "building Kubernetes $K8S_VERSION and etcd $ETCD_VERSION from source (once; full log: $LOG)"
  step "wrapper module" write_wrapper_module
  step "download modules" build_k8s
  step "compile kube-apiserver, kube-controller-manager, kube-scheduler, kubectl" link_k8s
  step "compile etcd" link_etcd
  step "check and cache" install_k8s
fi
if [ "$need_kwok" = 1 ]; then
  step "build kwok $KWOK_VERSION" build_kwok
fi
say "all binaries in $BIN after $((SECONDS - total_start))s"
echo "$BIN"
