#!/usr/bin/env bash
# Builds the local control plane's binaries from published Go modules, once per
# machine: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl and kwok (and, with BUILD_KUBELET=1, the kubelet for the real node of
# test/real-node/). They land in $TESTBIN_DIR (default
# ~/.cache/trace-operator/testbin/<k8s version>/) and are reused afterwards.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.0}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
CACHE_ROOT="${TRACE_OPERATOR_CACHE:-$HOME/.cache/trace-operator}"
TESTBIN_DIR="${TESTBIN_DIR:-$CACHE_ROOT/testbin/$K8S_VERSION}"
WORK="$CACHE_ROOT/build"
LOGS="$CACHE_ROOT/build/logs"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
[[ "${BUILD_KUBELET:-}" == 1 ]] && BINARIES+=(kubelet)

all_present() {
  for b in "${BINARIES[@]}"; do [[ -x "$TESTBIN_DIR/$b" ]] || return 1; done
  [[ -f "$TESTBIN_DIR/kwok-crds/kwok.x-k8s.io_logs.yaml" ]]
}

if all_present; then
  echo "$TESTBIN_DIR"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "build-testbin: Go is not installed; install Go 1.26 or newer (it builds the control plane)." >&2
  exit 1
fi

mkdir -p "$TESTBIN_DIR" "$WORK" "$LOGS"

# Runs one build step with its output in its own log, and on failure says
# which step broke and where to look.
step() {
  local name="$1"; shift
  local log="$LOGS/$name.log"
  echo "build-testbin: $name ..." >&2
  local started=$SECONDS
  if ! "$@" >"$log" 2>&1; then
    echo "build-testbin: step '$name' failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  echo "build-testbin: $name done in $((SECONDS - started))s" >&2
}

# A wrapper module: k8s.io/kubernetes refers to its staging modules as
# ./staging/src/..., which only exist in its git tree, so each one is replaced
# with its published v0.X.Y twin.
write_kubernetes_module() {
  local dir="$WORK/kubernetes-$K8S_VERSION"
  mkdir -p "$dir"
  local gomod
  gomod=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local staging_version="v0${K8S_VERSION#v1}"
  {
    echo "module trace-operator.local/testbin"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
  } >"$dir/go.mod"
  echo "$dir"
}

build_kubernetes() {
  local dir="$1"; shift
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  cd "$dir"
  GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$TESTBIN_DIR/" "$@"
}

# etcd's own modules also use local replaces, so it gets a wrapper module too.
build_etcd() {
  local dir="$WORK/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module trace-operator.local/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cd "$dir"
  GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$TESTBIN_DIR/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
  GOBIN="$TESTBIN_DIR" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

# kwok's Logs and Attach CRDs let tests give a simulated pod real log output
# (served by kwok's kubelet-like server); they come from kwok's module source.
copy_kwok_crds() {
  local src
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/crd/bases"
  [[ -d "$src" ]] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  mkdir -p "$TESTBIN_DIR/kwok-crds"
  cp "$src/kwok.x-k8s.io_logs.yaml" "$src/kwok.x-k8s.io_attaches.yaml" "$TESTBIN_DIR/kwok-crds/"
}

started=$SECONDS
[[ -x "$TESTBIN_DIR/etcd" ]] || step etcd build_etcd
[[ -x "$TESTBIN_DIR/kwok" ]] || step kwok build_kwok
[[ -f "$TESTBIN_DIR/kwok-crds/kwok.x-k8s.io_logs.yaml" ]] || step kwok-crds copy_kwok_crds
if [[ ! -x "$TESTBIN_DIR/kube-apiserver" || ! -x "$TESTBIN_DIR/kubectl" || ! -x "$TESTBIN_DIR/kube-scheduler" || ! -x "$TESTBIN_DIR/kube-controller-manager" ]]; then
  k8s_dir=$(write_kubernetes_module)
  step kubernetes build_kubernetes "$k8s_dir" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl
fi
if [[ "${BUILD_KUBELET:-}" == 1 && ! -x "$TESTBIN_DIR/kubelet" ]]; then
  k8s_dir=$(write_kubernetes_module)
  step kubelet build_kubernetes "$k8s_dir" k8s.io/kubernetes/cmd/kubelet
fi
echo "build-testbin: all binaries in $TESTBIN_DIR (took $((SECONDS - started))s)" >&2
echo "$TESTBIN_DIR"
