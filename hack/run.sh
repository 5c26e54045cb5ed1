#!/usr/bin/env bash
# make run: the manager on an embedded local control plane, or on the cluster $KUBECONFIG points at.
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--leader-election-namespace=default --metrics-bind-address="${METRICS_ADDR:-127.0.0.1:8080}" --metrics-secure=false --health-probe-bind-address="${PROBE_ADDR:-127.0.0.1:8081}")
if [[ -n "${KUBECONFIG:-}" ]]; then
  echo "run: KUBECONFIG is set; installing the CRDs into that cluster and running the manager against it"
  kubectl apply -k config/crd
  go build -o bin/manager ./cmd/manager
  exec bin/manager "${args[@]}" "$@"
fi
KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh)
export KUBEBUILDER_ASSETS
go build -o bin/manager-local ./cmd/manager-local
state=${LOCAL_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/playersessions}
exec bin/manager-local "${args[@]}" --local-control-plane="$state" --gamelift-bind-address="${GAMELIFT_ADDR:-127.0.0.1:9090}" --gamelift-sdk-bind-address="${GAMELIFT_SDK_ADDR:-127.0.0.1:9091}" "$@"
