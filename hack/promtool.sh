#!/usr/bin/env bash
# Builds promtool (github.com/prometheus/prometheus/cmd/promtool, pinned below) from the Go module proxy and
# caches it outside the repository; prints its path. Nothing prebuilt is downloaded.
#
#   hack/promtool.sh          # build if missing (a few minutes cold on 2 cores), print the path
set -euo pipefail

PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0} # Prometheus 3.x's Go module version
os=$(go env GOOS); arch=$(go env GOARCH)
cache=${PROMTOOL_CACHE:-${XDG_DATA_HOME:-$HOME/.local/share}/playersessions/promtool/$PROMETHEUS_VERSION-$os-$arch}
if [[ -x "$cache/promtool" ]]; then
  echo "$cache/promtool"
  exit 0
fi
echo "promtool: building github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION into $cache" >&2
mkdir -p "$cache"
GOBIN="$cache" GOFLAGS=-mod=mod go install "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
echo "$cache/promtool"
