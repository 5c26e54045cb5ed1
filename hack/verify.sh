#!/usr/bin/env bash
# Fails when the committed generated files (deepcopy, CRDs, RBAC, the Grafana dashboard, the Helm chart's CRDs and templates) are stale, or Go files are not gofmt-ed.
set -euo pipefail
cd "$(dirname "$0")/.."
generated() { find api internal config/crd/bases config/rbac -type f \( -name 'zz_generated*' -o -path 'config/*.yaml' \) -print0 | sort -z | xargs -0 sha256sum; }
before=$(generated)
make --no-print-directory generate manifests >/dev/null
after=$(generated)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") || true
  echo "verify: generated files were stale; run 'make generate manifests' and commit the result" >&2
  exit 1
fi
if ! go run ./hack/dashboard -check; then
  echo "verify: config/grafana/playersessions.json is stale; run 'make dashboard' and commit the result" >&2
  exit 1
fi
if ! go run ./hack/chart -check; then
  echo "verify: the Helm chart's generated CRDs or templates are stale; run 'make chart' and commit the result" >&2
  exit 1
fi
# test/third_party holds unmodified upstream code (its own formatting): never rewritten here.
unformatted=$(gofmt -l $(git ls-files '*.go' ':!test/third_party' 2>/dev/null || find . -name '*.go' -not -path './test/third_party/*') 2>/dev/null || true)
if [[ -n "$unformatted" ]]; then
  echo "verify: not gofmt-ed:" >&2; echo "$unformatted" >&2
  exit 1
fi
echo "verify: generated files are up to date"
