#!/usr/bin/env bash
# Finds or builds the Kubernetes programs kplex runs: kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kubelet, kube-proxy, etcd, kwok (plus kwok's stage files), CoreDNS, crictl
# (a real node's programs: `kplex dev up` stops its pods through crictl, so their networks are released)
# kube-router (the real node's NetworkPolicy agent), local-path-provisioner (the real node's dynamic
# volume provisioner) and metrics-server (the real node's resource metrics, what `kubectl top` and HPAs
# read); also helm, a client the tests drive through the gateway as users do (no node runs it).
#
# Looks in $KPLEX_BIN_DIR (default ~/.cache/kplex/bin/<k8s version>/); builds from source through the Go
# module proxy only what is missing. Idempotent: with a warm cache it returns in about a second.
# Prints the binary directory as its last line of stdout; progress and logs go to stderr.
#
# Recipe: shared/k8s-binaries.md. What had to change against it:
# - v1.35.4 is the newest v1.35 patch the module proxy serves here (v1.35.7 is not listed).
# - the staging replace list is derived from kubernetes' own go.mod, not typed in.
# - only the programs missing from the cache are compiled, so adding one (kubelet, kube-proxy) to an
#   existing cache does not relink the others.
set -euo pipefail

K8S_VERSION="${KPLEX_K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${KPLEX_ETCD_VERSION:-v3.6.5}" # what k8s.io/apiserver v0.35.x requires
KWOK_VERSION="${KPLEX_KWOK_VERSION:-v0.8.0}"
# The newest CoreDNS whose go.mod this Go (1.26) accepts and whose dependencies all resolve here.
COREDNS_VERSION="${KPLEX_COREDNS_VERSION:-v1.15.0}"
# cri-tools v1.35.0 is not served by the module proxy; v1.34's CRI v1 is what containerd 1.6 speaks.
CRICTL_VERSION="${KPLEX_CRICTL_VERSION:-v1.34.0}"
# The NetworkPolicy agent, its policy controller alone: iptables and ipsets. SIG Network's
# kube-network-policies (v0.8.0) needs nftables' queue expression, which these machines' kernels lack
# (CONFIG_NFT_QUEUE unset, no modules to load). v2.1.0 is the only kube-router the module proxy serves.
KUBE_ROUTER_VERSION="${KPLEX_KUBE_ROUTER_VERSION:-v2.1.0}"
# The dynamic provisioner of the real node's volumes (directories under the data folder). v0.0.30 is the
# only local-path-provisioner the module proxy serves here.
LOCAL_PATH_VERSION="${KPLEX_LOCAL_PATH_VERSION:-v0.0.30}"
# metrics-server v0.8.0: its go.mod has no replace lines (v0.9.0 is served too, untried).
METRICS_SERVER_VERSION="${KPLEX_METRICS_SERVER_VERSION:-v0.8.0}"
# The newest Helm 3 the module proxy serves; Helm 4 changes the CLI users' scripts are written for.
HELM_VERSION="${KPLEX_HELM_VERSION:-v3.22.0}"

CACHE="${KPLEX_CACHE_DIR:-$HOME/.cache/kplex}"
BIN="${KPLEX_BIN_DIR:-$CACHE/bin/$K8S_VERSION}"
BUILD="$CACHE/build/k8s-$K8S_VERSION"
LOG="$CACHE/build/build-$K8S_VERSION.log"
K8S_PROGRAMS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)

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
    coredns) "$1" -version ;;
    crictl) "$1" --version ;;
    kube-router) "$1" --version ;;
    local-path-provisioner) "$1" --version ;;
    metrics-server) "$1" --version ;;
    helm) "$1" version --short ;;
    *) "$1" --version ;;
  esac
}
works() { [ -x "$BIN/$1" ] && version_of "$BIN/$1" >/dev/null 2>&1; }

missing_k8s=()
for p in "${K8S_PROGRAMS[@]}"; do works "$p" || missing_k8s+=("$p"); done
need_etcd=0
works etcd || need_etcd=1
need_kwok=0
works kwok && [ -d "$BIN/kwok-stages" ] || need_kwok=1
need_coredns=0
works coredns || need_coredns=1
need_crictl=0
works crictl || need_crictl=1
need_kube_router=0
works kube-router || need_kube_router=1
need_local_path=0
works local-path-provisioner || need_local_path=1
need_metrics_server=0
works metrics-server || need_metrics_server=1
need_helm=0
works helm || need_helm=1

if [ ${#missing_k8s[@]} = 0 ] && [ "$need_etcd" = 0 ] && [ "$need_kwok" = 0 ] && [ "$need_coredns" = 0 ] && [ "$need_crictl" = 0 ] && [ "$need_kube_router" = 0 ] && [ "$need_local_path" = 0 ] && [ "$need_metrics_server" = 0 ] && [ "$need_helm" = 0 ]; then
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
  for p in "${missing_k8s[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$p"); done
  go build -trimpath -ldflags "$(ldflags)" -o "$out/" "${pkgs[@]}"
}

link_etcd() {
  cd "$BUILD"
  go build -trimpath -ldflags "-s -w" -o "$BUILD/out/etcd" go.etcd.io/etcd/server/v3
}

# Checks each program before it enters the cache.
install_built() {
  local p
  for p in "$@"; do
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

# CoreDNS is its own module with no replace lines, so `go install module@version` builds it; its many
# plugins make it the slowest program here with a cold module cache (about 8.5 minutes on 2 cores).
build_coredns() {
  local tmp="$BUILD/coredns-out"
  mkdir -p "$tmp"
  (cd "$BUILD" && GOBIN="$tmp" GOFLAGS= go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION")
  version_of "$tmp/coredns" || return 1
  mv -f "$tmp/coredns" "$BIN/coredns"
}

# crictl: its module has no replace lines either.
build_crictl() {
  local tmp="$BUILD/crictl-out"
  mkdir -p "$tmp"
  (cd "$BUILD" && GOBIN="$tmp" GOFLAGS= go install -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION")
  version_of "$tmp/crictl" || return 1
  mv -f "$tmp/crictl" "$BIN/crictl"
}

# kube-router: its module has no replace lines; the version is stamped as its Makefile does.
build_kube_router() {
  local tmp="$BUILD/kube-router-out"
  mkdir -p "$tmp"
  (cd "$BUILD" && GOBIN="$tmp" GOFLAGS= go install -trimpath -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION")
  version_of "$tmp/kube-router" || return 1
  mv -f "$tmp/kube-router" "$BIN/kube-router"
}

# local-path-provisioner: its module has no replace lines; the version is stamped as its Makefile does.
build_local_path() {
  local tmp="$BUILD/local-path-out"
  mkdir -p "$tmp"
  (cd "$BUILD" && GOBIN="$tmp" GOFLAGS= go install -trimpath -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_VERSION" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION")
  version_of "$tmp/local-path-provisioner" || return 1
  mv -f "$tmp/local-path-provisioner" "$BIN/local-path-provisioner"
}

# metrics-server: no replace lines in its module; the version is stamped as its Makefile does.
build_metrics_server() {
  local tmp="$BUILD/metrics-server-out"
  mkdir -p "$tmp"
  (cd "$BUILD" && GOBIN="$tmp" GOFLAGS= go install -trimpath -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION")
  version_of "$tmp/metrics-server" || return 1
  mv -f "$tmp/metrics-server" "$BIN/metrics-server"
}

# Helm: its module has no replace lines. The ldflags are those of its Makefile: its version, and the
# Kubernetes version of the client-go it is built with (what `helm template` and `helm lint` assume
# without a cluster). go install runs at low priority: it is the heaviest build after CoreDNS, and the
# machines have 2 cores shared with running clusters.
build_helm() {
  local tmp="$BUILD/helm-out"
  mkdir -p "$tmp"
  local gomod minor
  gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || return 1
  minor=$(sed -n 's/^\s*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
  [ -n "$minor" ] || return 1
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local pkg
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  (cd "$BUILD" && GOBIN="$tmp" GOFLAGS= nice -n 10 go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  version_of "$tmp/helm" || return 1
  mv -f "$tmp/helm" "$BIN/helm"
}

if [ ${#missing_k8s[@]} -gt 0 ] || [ "$need_etcd" = 1 ]; then
  say "building Kubernetes $K8S_VERSION and etcd $ETCD_VERSION from source (once; full log: $LOG)"
  step "wrapper module" write_wrapper_module
  step "download modules" build_k8s
fi
if [ ${#missing_k8s[@]} -gt 0 ]; then
  step "compile ${missing_k8s[*]}" link_k8s
  step "check and cache ${missing_k8s[*]}" install_built "${missing_k8s[@]}"
fi
if [ "$need_etcd" = 1 ]; then
  step "compile etcd" link_etcd
  step "check and cache etcd" install_built etcd
fi
if [ "$need_kwok" = 1 ]; then
  step "build kwok $KWOK_VERSION" build_kwok
fi
if [ "$need_coredns" = 1 ]; then
  step "build CoreDNS $COREDNS_VERSION" build_coredns
fi
if [ "$need_crictl" = 1 ]; then
  step "build crictl $CRICTL_VERSION" build_crictl
fi
if [ "$need_kube_router" = 1 ]; then
  step "build kube-router $KUBE_ROUTER_VERSION" build_kube_router
fi
if [ "$need_local_path" = 1 ]; then
  step "build local-path-provisioner $LOCAL_PATH_VERSION" build_local_path
fi
if [ "$need_metrics_server" = 1 ]; then
  step "build metrics-server $METRICS_SERVER_VERSION" build_metrics_server
fi
if [ "$need_helm" = 1 ]; then
  step "build helm $HELM_VERSION" build_helm
fi
say "all binaries in $BIN after $((SECONDS - total_start))s"
echo "$BIN"
