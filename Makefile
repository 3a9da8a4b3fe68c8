# filesync: a two-way GCS sync sidecar and the kit around it.
# `make help` lists the targets. Tools are pinned below and installed into ./bin.

SHELL := /usr/bin/env bash -o errexit -o pipefail -o nounset
.DEFAULT_GOAL := help

ROOT    := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BIN     := $(ROOT)/bin
VERSION ?= $(shell git -C $(ROOT) describe --tags --always --dirty 2>/dev/null || echo dev)
export PATH := $(BIN):$(PATH)

# Every pinned version and image name lives in hack/versions.env; each KEY=value there becomes `KEY ?= value`
# here, so the environment and the command line still override it. Exported to every recipe.
PINS := $(ROOT)/hack/versions.env
$(foreach pin,$(shell sed -e 's/#.*//' -e '/^[[:space:]]*$$/d' $(PINS)),$(eval $(firstword $(subst =, ,$(pin))) ?= $(patsubst $(firstword $(subst =, ,$(pin)))=%,%,$(pin))))
export $(shell sed -n 's/^\([A-Z0-9_]*\)=.*/\1/p' $(PINS))

##@ Images (FILESYNC_IMAGE, FAKE_GCS_IMAGE, WORDPRESS_IMAGE, MARIADB_IMAGE, PUBSUB_EMULATOR_IMAGE in hack/versions.env; `make up` loads them into kind)
# IMAGES=auto pulls the official images where a registry answers, else builds locally;
# IMAGES=local builds fake-gcs-server from its Go module and WordPress/MariaDB stand-ins from Debian packages;
# IMAGES=public pulls the official images and tags them with the names above (the Pub/Sub emulator, which has
# none, is always built: images/pubsub-emulator).
IMAGES ?= auto
export IMAGES VERSION

##@ Cluster
CLUSTER ?= filesync
# AIRGAP=auto builds an offline kind node image (hack/airgap) when no container registry answers;
# AIRGAP=1 forces it, AIRGAP=0 uses kind's public node image.
AIRGAP  ?= auto
KIND_NODE_IMAGE ?=
export CLUSTER AIRGAP KIND_NODE_IMAGE

MODULES := sidecar e2e
comma   := ,
# Modules kept out of go.work, built with GOWORK=off: e2e/monitoring requires github.com/prometheus/prometheus,
# whose dependency graph would otherwise raise the versions the sidecar and e2e modules build with.
# (images/pubsub-emulator, the emulator image's 50-line main, is a module of its own too, compiled by
# `make images` only: with its own dependency versions, a -race test build of it would share no cache.)
STANDALONE_MODULES := e2e/monitoring

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: pins
pins: ## Regenerate manifests/pins (the emulators' image tags) from hack/versions.env.
	cd e2e && go test -count=1 -run '^TestPinsComponent$$' ./manifests -update

.PHONY: fmt
fmt: ## Format all Go code (gofmt -s).
	gofmt -s -w $(MODULES)

.PHONY: vet
vet: ## Run go vet on every module.
	@for m in $(MODULES); do (cd $$m && go vet ./... && go vet -tags e2e,integration,interop ./...); done
	@for m in $(STANDALONE_MODULES); do (cd $$m && GOWORK=off go vet ./...); done

.PHONY: test
test: ## Run every module's unit and integration tests with -race (no cluster, no Docker).
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && go test -race -count=1 ./...); done
	@for m in $(STANDALONE_MODULES); do echo "== $$m"; (cd $$m && GOWORK=off go test -race -count=1 ./...); done

# shellcheck is Debian's package, installed when missing (hack/shellcheck.sh, as `make docker` installs docker.io);
# actionlint runs it on the workflows' run: blocks too.
.PHONY: lint
lint: $(BIN)/golangci-lint $(BIN)/actionlint ## Lint every module with the pinned golangci-lint, every shell script with shellcheck, every workflow with actionlint.
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && $(BIN)/golangci-lint run --build-tags e2e,integration,interop ./...); done
	@for m in $(STANDALONE_MODULES); do echo "== $$m"; (cd $$m && GOWORK=off $(BIN)/golangci-lint run ./...); done
	@echo "== shell scripts"; hack/shellcheck.sh
	@echo "== workflows"; $(BIN)/actionlint -shellcheck=shellcheck .github/workflows/*.yaml

.PHONY: test-integration
test-integration: docker image images-test ## Run the testcontainers-go lane against the filesync image (needs Docker).
	cd e2e && TESTCONTAINERS_RYUK_DISABLED=$${TESTCONTAINERS_RYUK_DISABLED:-true} \
	  go test -race -count=1 -tags integration ./integration/...

# The tools' cases of docs/e2e.md ("The interop lane"): bin/rclone is the bench's pinned build, gcloud comes
# from PATH (google-cloud-cli); without one of them the tests skip, or fail under FILESYNC_REQUIRE_INTEROP=1.
.PHONY: test-interop
test-interop: build $(BIN)/rclone $(BIN)/fake-gcs-server ## Run the interop lane: rclone and gcloud storage against filesync through one fake-gcs-server, both ways (no Docker).
	cd e2e && go test -count=1 -tags interop ./interop/...

# BENCH_ARGS go to the harness (e.g. BENCH_ARGS='-runs 1 -cases restore'); every flag has a BENCH_* env twin.
.PHONY: bench
bench: $(BIN)/rclone $(BIN)/benchstat $(BIN)/fake-gcs-server $(BIN)/pubsub-emulator build ## Benchmark filesync against rclone and gcloud on one fake-gcs-server; prints ratios.
	cd e2e && go build -o $(BIN)/filesync-bench ./bench
	$(BIN)/filesync-bench -root $(ROOT) $(BENCH_ARGS)

##@ Build

# PLATFORMS=linux/amd64,linux/arm64 also cross-builds bin/filesync-linux-amd64 and bin/filesync-linux-arm64 (as
# the release workflow does); bin/filesync is always the host's build.
PLATFORMS ?=
LDFLAGS   := -s -w -X main.version=$(VERSION)
# disable_grpc_modules: cloud.google.com/go/storage's documented opt-out of its gRPC transport's DirectPath
# (gRPC's xDS and RLS, some 145 packages of 729): filesync talks JSON to GCS, and the binary is 24 MB instead
# of 37, its resident pages 9 MiB fewer (docs/benchmarks.md, issue 23). TestBuildLeavesOutDirectPath holds it.
GOTAGS    := disable_grpc_modules
.PHONY: build
build: ## Build the filesync binary into ./bin (PLATFORMS=linux/amd64,linux/arm64 cross-builds those too).
	cd sidecar && CGO_ENABLED=0 go build -trimpath -tags "$(GOTAGS)" -ldflags "$(LDFLAGS)" -o $(BIN)/filesync ./cmd/filesync
	@for p in $(subst $(comma), ,$(PLATFORMS)); do \
	  echo "== $$p"; (cd sidecar && CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} go build -trimpath -tags "$(GOTAGS)" -ldflags "$(LDFLAGS)" \
	    -o $(BIN)/filesync-$${p%/*}-$${p#*/} ./cmd/filesync) || exit 1; done

.PHONY: image
image: docker build ## Build the filesync container image ($(FILESYNC_IMAGE)) with no registry access.
	hack/images/filesync.sh

.PHONY: images
images: image ## Build (or, with IMAGES=public, pull and tag) every image the example and e2e use.
	hack/images/all.sh fake-gcs-server wordpress mariadb pubsub-emulator

.PHONY: images-test
images-test: docker ## Build the images the integration tests need (fake-gcs-server).
	hack/images/all.sh fake-gcs-server

.PHONY: docker
docker: ## Install Debian's docker.io if missing, start dockerd if it is not running, and wait for it.
	hack/docker.sh

##@ Cluster

.PHONY: up
up: docker images $(BIN)/kind ## Bring up kind with WordPress (3 replicas), filesync and fake-gcs-server; prints the URL.
	hack/up.sh

.PHONY: deploy
deploy: ## (Re)apply the kind overlay to the running cluster and wait for it.
	hack/deploy.sh

.PHONY: down
down: $(BIN)/kind ## Delete the kind cluster.
	$(BIN)/kind delete cluster --name $(CLUSTER)

.PHONY: dev
dev: ## Run `tilt up` against the kind cluster (install Tilt first: https://docs.tilt.dev/install.html).
	@command -v tilt >/dev/null || { echo "tilt is not installed; see https://docs.tilt.dev/install.html" >&2; exit 2; }
	tilt up

.PHONY: e2e
e2e: docker images $(BIN)/kind ## Create a kind cluster, run the e2e suite, tear it down (E2E_KEEP=1 keeps it).
	hack/e2e.sh

.PHONY: node-image
node-image: docker $(BIN)/kind ## Build the offline kind node image (hack/airgap; cached after the first run).
	hack/airgap/build.sh

##@ Tools

.PHONY: tools
tools: $(BIN)/golangci-lint $(BIN)/actionlint $(BIN)/kind $(BIN)/benchstat ## Install the pinned tools into ./bin.

$(BIN)/golangci-lint:
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

$(BIN)/actionlint:
	GOBIN=$(BIN) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

$(BIN)/kind:
	GOBIN=$(BIN) go install sigs.k8s.io/kind@$(KIND_VERSION)

$(BIN)/benchstat:
	GOBIN=$(BIN) go install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)

$(BIN)/rclone:
	GOBIN=$(BIN) go install github.com/rclone/rclone@$(RCLONE_VERSION)

# The same cached build as the fake-gcs-server image (hack/images/fake-gcs-server.sh).
$(BIN)/fake-gcs-server:
	@mkdir -p $(BIN)
	cp "$$(hack/images/fake-gcs-server.sh --binary)" $@

# The pstest server main of the emulator image, as a process for the bench's notify case.
$(BIN)/pubsub-emulator: $(wildcard images/pubsub-emulator/*.go images/pubsub-emulator/go.*)
	@mkdir -p $(BIN)
	cd images/pubsub-emulator && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $@ .

.PHONY: clean
clean: ## Remove ./bin and build artifacts (keeps Go caches and the node-image cache).
	rm -rf $(BIN) dist _artifacts e2e/_artifacts
