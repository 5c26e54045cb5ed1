#!/usr/bin/env bash
# Builds kube-apiserver and etcd from their Go modules, pinned to the Kubernetes
# version in go.mod, and caches them outside the repository. Prints the folder
# (suitable for KUBEBUILDER_ASSETS). Nothing prebuilt is downloaded: everything
# comes from the Go module proxy.
#
#   hack/envtest-binaries.sh            # build if missing, print the folder
#   K8S_VERSION=v1.37.2 hack/envtest-binaries.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${K8S_VERSION:-}" ]]; then
  # k8s.io/api v0.Y.Z  <->  k8s.io/kubernetes v1.Y.Z
  api=$(awk '$1=="k8s.io/api"{print $2; exit}' "$root/go.mod")
  K8S_VERSION="v1.${api#v0.}"
fi
staging="v0.${K8S_VERSION#v1.}"
os=$(go env GOOS); arch=$(go env GOARCH)
cache=${ENVTEST_CACHE:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest/k8s/${K8S_VERSION#v}-$os-$arch}

if [[ -x "$cache/kube-apiserver" && -x "$cache/etcd" ]]; then
  echo "$cache"
  exit 0
fi

log() { echo "envtest-binaries: $*" >&2; }
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log "building kube-apiserver and etcd for Kubernetes $K8S_VERSION into $cache (cold build ~10 min on 2 cores)"
gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
[[ -f "$gomod" ]] || { log "cannot read go.mod of k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2; exit}' "$gomod")
[[ -n "$etcd_version" ]] || { log "k8s.io/kubernetes@$K8S_VERSION does not require go.etcd.io/etcd/server/v3"; exit 1; }

{
  echo "module envtestbuilder"
  echo
  awk '$1=="go"{print; exit}' "$gomod"
  echo
  echo "require ("
  echo "  k8s.io/kubernetes $K8S_VERSION"
  echo "  go.etcd.io/etcd/server/v3 $etcd_version"
  echo ")"
  echo
  # Every staging module k8s.io/kubernetes replaces locally is pinned to its published version.
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" |
    awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
} >"$work/go.mod"
cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
GO
cd "$work"
GOFLAGS=-mod=mod go mod tidy >&2
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$cache/etcd.tmp" go.etcd.io/etcd/server/v3
mv "$cache/etcd.tmp" "$cache/etcd"
log "etcd $etcd_version built"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$cache/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$cache/kube-apiserver.tmp" "$cache/kube-apiserver"
log "kube-apiserver $K8S_VERSION built"
echo "$cache"
