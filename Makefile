# Berth's build. `make help` lists the targets.
#
# Tools (kube-apiserver, etcd, containerd, controller-gen, helm, registry) are built
# once from the Go module proxy by hack/tools.sh into $(BERTH_CACHE) and linked into
# bin/; their versions live in hack/tools/<tool>/go.mod.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

BIN            := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
export BERTH_CACHE ?= $(HOME)/.cache/berth
# envtest finds kube-apiserver and etcd here.
export KUBEBUILDER_ASSETS ?= $(BIN)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/berthdev/berth/internal/version.Version=$(VERSION) \
           -X github.com/berthdev/berth/internal/version.GitCommit=$(COMMIT)

# Integration tests start one apiserver per package; keep package parallelism low on
# small machines so they do not starve each other.
TEST_P ?= 2
GO_TEST_FLAGS ?=

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development

.PHONY: tools
tools: ## Build the toolchain into the cache (first run ~10 minutes, then a no-op).
	@hack/tools.sh

$(CONTROLLER_GEN):
	@BERTH_TOOLS=controller-gen hack/tools.sh

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate DeepCopy methods and apply configurations for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./apis/v1alpha1/...
	$(CONTROLLER_GEN) applyconfiguration:headerFile=hack/boilerplate.go.txt paths=./apis/v1alpha1/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC into config/ and the Helm chart.
	$(CONTROLLER_GEN) crd paths=./apis/v1alpha1/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=berth-manager paths=./internal/manager/... paths=./controllers/... output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=berth-agent paths=./agent output:rbac:artifacts:config=config/rbac/agent
	$(CONTROLLER_GEN) rbac:roleName=berth-hollow paths=./agent/hollow output:rbac:artifacts:config=config/rbac/hollow
	$(CONTROLLER_GEN) rbac:roleName=berth-api paths=./ecsapi/... output:rbac:artifacts:config=config/rbac/api
	@hack/sync-chart.sh

.PHONY: fmt
fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go' | grep -v '^hack/tools/')

.PHONY: lint
lint: ## gofmt, go vet and golangci-lint (errorlint, gocyclo, importas, misspell, staticcheck, ...).
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	@if [ -x $(BIN)/golangci-lint ]; then $(BIN)/golangci-lint run ./...; else echo "golangci-lint not built (make tools): skipped"; fi

.PHONY: verify
verify: $(CONTROLLER_GEN) ## Fail when generated files or the console's vendored JavaScript are stale.
	@hack/verify-generated.sh
	@hack/vendor-js.sh --check

.PHONY: vendor-js
vendor-js: ## Vendor the console's browser packages (hack/web) into console/web/static/vendor.
	@hack/vendor-js.sh

##@ Build

.PHONY: build
build: ## Build bin/berth.
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/berth .

# `berth up` runs containers, which needs root.
SUDO      := $(if $(filter 0,$(shell id -u)),,sudo)
STATE_DIR ?= $(CURDIR)/.berth

# A newcomer's first `make up` builds only what `berth up` runs (hack/tools.sh's "up"
# set): controller-gen, helm and golangci-lint are for development and `make test`.
.PHONY: tools-up
tools-up: ## Build only the tools `berth up` runs.
	@BERTH_TOOLS=up hack/tools.sh

.PHONY: up
up: tools-up build ## Run all of Berth on this machine until Ctrl-C (state in .berth; ARGS="--hollow-instances 20" ...).
	$(SUDO) $(BIN)/berth up --state-dir $(STATE_DIR) --bin-dir $(BIN) $(ARGS)

.PHONY: down
down: ## Stop `make up` from another shell.
	$(SUDO) $(BIN)/berth down --state-dir $(STATE_DIR)

.PHONY: run
run: build ## Run the manager against the current kubeconfig.
	$(BIN)/berth manager --zap-devel $(ARGS)

.PHONY: docker-build
docker-build: ## Build the manager and agent images (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t berth:$(VERSION) .
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --target agent -t berth-agent:$(VERSION) .

##@ Test

.PHONY: test
test: tools verify lint build test-integration fuzz test-faults ## Everything CI runs: checks, all tests, the fuzzers (10 s each) and the fault suite.

FUZZTIME ?= 10s

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s; failing inputs land in testdata/fuzz).
	@FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: test-unit
test-unit: ## Unit tests (no apiserver).
	go test -short -count=1 $(GO_TEST_FLAGS) ./...

.PHONY: test-integration
test-integration: tools ## All tests, including those against a real kube-apiserver and etcd.
	go test -count=1 -p $(TEST_P) $(GO_TEST_FLAGS) ./...

# The fault suite needs root (without it, it fails when CI is set and skips otherwise)
# and takes about 3 minutes, so test-integration skips it; its results table is also
# written to FAULTS_REPORT.
FAULTS_REPORT ?= $(BIN)/test-faults.md

.PHONY: test-faults
test-faults: tools ## The fault suite (test/faults, as root, ~3 min): kill -9, restarts, partitions; prints a results table.
	BERTH_FAULTS=1 BERTH_FAULTS_REPORT=$(FAULTS_REPORT) go test -count=1 -v $(GO_TEST_FLAGS) ./test/faults/

##@ Benchmarks

# The containerd benchmarks (TaskStartupLatency, AgentFootprint) need root; without
# it they are reported as skipped. BENCH_ARGS="--only PlacementThroughput --profile"
# runs one benchmark and writes pprof profiles into bench/results/profiles.
BENCH_ARGS ?=

.PHONY: bench
bench: tools build ## Benchmark suite at full size (HollowScale alone takes ~40 min on 2 cores): bench/results/latest.json and latest.md.
	go run ./bench/cmd/berth-bench --size 1 --berth $(BIN)/berth --out bench/results $(BENCH_ARGS)

.PHONY: bench-quick
bench-quick: tools build ## Benchmark suite at a tenth of the sizes (a few minutes), same outputs.
	go run ./bench/cmd/berth-bench --size 0.1 --berth $(BIN)/berth --out bench/results $(BENCH_ARGS)
