# playersessions operator. `make run` and `make test` are the two commands a newcomer needs.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

CONTROLLER_GEN ?= go tool controller-gen
IMG ?= playersessions/manager:dev
# Extra arguments for go test, e.g. make test GOTEST_ARGS='-run TestCapacity -v'.
GOTEST_ARGS ?=

.PHONY: all
all: build

##@ Development

.PHONY: manifests
manifests: ## Generate the CRDs, the RBAC role and the webhook configuration from the markers, then the Helm chart's and the dashboard.
	$(CONTROLLER_GEN) crd paths="./api/..." output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) webhook paths="./internal/webhook/..." output:webhook:artifacts:config=config/webhook
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths="./controllers/...;./internal/gamelift/...;./internal/index/..." output:rbac:artifacts:config=config/rbac
	go run ./hack/chart
	go run ./hack/dashboard

.PHONY: generate
generate: ## Generate the deepcopy functions and the query API's OpenAPI definitions.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths="./api/...;./internal/query/v1alpha1/..."
	go tool openapi-gen --output-dir internal/query/openapi --output-pkg github.com/playersessions/operator/internal/query/openapi \
		--output-file zz_generated.openapi.go --go-header-file hack/boilerplate.go.txt --report-filename /dev/null \
		k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/version \
		github.com/playersessions/operator/api/v1alpha1 github.com/playersessions/operator/internal/query/v1alpha1

.PHONY: chart
chart: ## Generate the Helm chart's CRDs and templates (charts/playersessions) from config/default and config/prometheus.
	go run ./hack/chart

.PHONY: dashboard
dashboard: ## Generate the Grafana dashboard (config/grafana/playersessions.json) with the Grafana Foundation SDK.
	go run ./hack/dashboard

.PHONY: image
image: ## Build the manager's image without a container engine (go-containerregistry) as an OCI layout in bin/manager-oci.
	go run ./hack/image -o bin/manager-oci -tag $(IMG)

.PHONY: fmt
fmt: ## go fmt the code.
	go fmt ./...

.PHONY: vet
vet: ## go vet the code.
	go vet ./...

.PHONY: verify
verify: ## Fail if generated files are stale or code is not gofmt-ed.
	hack/verify.sh

.PHONY: envtest
envtest: ## Build (once, cached outside the repo) kube-apiserver and etcd from their Go modules.
	hack/envtest-binaries.sh >/dev/null

.PHONY: promtool
promtool: ## Build (once, cached outside the repo) promtool from its Go module, for the alerts' unit tests.
	hack/promtool.sh >/dev/null

.PHONY: test
test: verify vet envtest promtool ## Run every test (unit, envtest integration, the alerts with promtool) with the race detector.
	KUBEBUILDER_ASSETS="$$(hack/envtest-binaries.sh)" PROMTOOL="$$(hack/promtool.sh)" go test -race -count=1 -timeout 40m $(GOTEST_ARGS) ./...
	test/e2e/gamelift.sh

.PHONY: e2e
e2e: envtest ## The GameLift endpoint driven by the aws CLI and boto3 (installs Debian's awscli and python3-boto3).
	test/e2e/gamelift.sh

.PHONY: bench
bench: envtest ## Admissions against plain creates, CreatePlayerSession latency, timeout lateness, on a local control plane (docs/benchmarks.md).
	KUBEBUILDER_ASSETS="$$(hack/envtest-binaries.sh)" go run ./hack/bench $(BENCH_ARGS)

.PHONY: bench-gameservers
bench-gameservers: envtest ## 1,000 GameLift Server SDK processes: memory, heartbeats, placement, AcceptPlayerSession (docs/benchmarks.md).
	KUBEBUILDER_ASSETS="$$(hack/envtest-binaries.sh)" go run ./hack/benchgameservers $(BENCH_ARGS)

.PHONY: bench-retention
bench-retention: envtest ## What retained player sessions cost etcd, kube-apiserver and the manager (docs/benchmarks.md).
	KUBEBUILDER_ASSETS="$$(hack/envtest-binaries.sh)" go run ./hack/benchretention $(BENCH_ARGS)

.PHONY: bench-history
bench-history: envtest ## Describe calls against 10 million player sessions in the history store (docs/benchmarks.md).
	KUBEBUILDER_ASSETS="$$(hack/envtest-binaries.sh)" go run ./hack/benchhistory -records 10000000 $(BENCH_ARGS)

.PHONY: bench-query
bench-query: envtest ## Compare the query API with CRD field selectors and list-all (see docs/benchmarks.md).
	KUBEBUILDER_ASSETS="$$(hack/envtest-binaries.sh)" go run ./hack/benchquery $(BENCH_ARGS)

.PHONY: soak
soak: envtest ## Random faults under a mixed workload, histories checked for linearizability (DURATION=60m, SEED=n; docs/reliability.md).
	KUBEBUILDER_ASSETS="$$(hack/envtest-binaries.sh)" SOAK_DURATION=$(or $(DURATION),60m) SOAK_SEED=$(SEED) SOAK_REPORT=$(or $(REPORT),soak-report.md) \
		go test ./test/soak -run TestSoak -count=1 -v -timeout 0

.PHONY: bench-search
bench-search: ## SearchGameSessions' index against a scan of the cache, 100,000 game sessions, seats changing (docs/benchmarks.md).
	go run ./hack/benchsearch -sessions 100000 -writes 500 $(BENCH_ARGS)

.PHONY: bench-agones
bench-agones: envtest ## Players List change -> player session status on Agones GameServers (see docs/benchmarks.md).
	KUBEBUILDER_ASSETS="$$(hack/envtest-binaries.sh)" go run ./hack/benchagones $(BENCH_ARGS)

##@ Build and run

.PHONY: build
build: ## Build the manager (bin/manager) and the manager on a local control plane (bin/manager-local).
	go build -o bin/manager ./cmd/manager
	go build -o bin/manager-local ./cmd/manager-local

.PHONY: run
run: envtest ## Run the manager on an embedded local control plane (or on $KUBECONFIG's cluster if set).
	hack/run.sh

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
