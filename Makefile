# hoist — `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The rig's tools (act, crane, gitlab-ci-local) are installed under .cache/tools.
export PATH := $(CURDIR)/.cache/tools/bin:$(PATH)
export CGO_ENABLED := 0

RIG_ENV      := .cache/rig/env
IMAGE_TAR    := .cache/image.tar
BUSYBOX_TAR  := .cache/busybox.tar
BUSYBOX_TAG  := hoist-rig/busybox:latest
HELPER_TAR   := .cache/helper.tar
HELPER_TAG   := hoist-rig/helper:latest
TEST_TIMEOUT := 20m
TEST_JSON    := .cache/test.json
TEST_JUNIT   := .cache/test-junit.xml
TEST_GATE    := .cache/test-gate.txt
STATICCHECK  := v0.8.2
# A release build stamps its version into every binary (--version, the user
# agent): make build VERSION=0.2.0. Without VERSION they report <spec.Version>-dev.
VERSION      ?=
GO_LDFLAGS   := -s -w$(if $(VERSION), -X github.com/hoist-ci/hoist/internal/spec.stamped=$(VERSION))
DIST         ?= dist
DIST_ARCHES  ?= amd64 arm64
GO_FILES      = $(shell find . -name '*.go' -not -path './.cache/*' -not -path './.git/*' -not -path '*/testdata/*')

.PHONY: help build dist generate image rig-install rig-up rig-down test test-short demo bench lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-11s %s\n", $$1, $$2 }'

build: ## build every tool (actions/*) statically into bin/
	go build -trimpath -ldflags '$(GO_LDFLAGS)' -o bin/ ./actions/...

# The release archives the host actions install (docs/releasing.md); reproducible.
# They hold what the image's /usr/local/bin holds: the multi-call binary hoist
# (IMAGE_CMDS) and a link per tool (internal/spec's Tools()).
DIST_TOOLS   := build-push retag bump gate publish
dist: export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
dist: ## release archives $(DIST)/hoist_<VERSION>_linux_<arch>.tar.gz and checksums.txt (VERSION=x.y.z required)
	@[ -n "$(VERSION)" ] || { echo "make dist: set VERSION, the release without its v (make dist VERSION=0.2.0)"; exit 1; }
	rm -rf $(DIST) && mkdir -p $(DIST)
	for arch in $(DIST_ARCHES); do \
	  d=$(DIST)/hoist_$(VERSION)_linux_$$arch; \
	  GOOS=linux GOARCH=$$arch go build -trimpath -ldflags '$(GO_LDFLAGS)' -o $$d/ $(IMAGE_CMDS); \
	  for tool in $(DIST_TOOLS); do ln -s hoist $$d/$$tool; done; \
	  tar -C $$d --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$$SOURCE_DATE_EPOCH -cf - . | gzip -n >$$d.tar.gz; \
	  rm -rf $$d; \
	done
	cd $(DIST) && sha256sum hoist_$(VERSION)_linux_*.tar.gz >checksums.txt && cat checksums.txt

generate: ## regenerate action.yml files, template inputs and docs tables from internal/spec
	go generate ./...

# The image holds one stripped multi-call binary, /usr/local/bin/hoist, with
# a link per tool and /kaniko/executor. publish-helm (Helm's engine, +14.7 MB
# compressed: 30.6 MB in all) is left out to keep the image under 30 MB;
# IMAGE_CMDS="./actions/hoist ./actions/publish-helm" puts it in.
IMAGE_CMDS    ?= ./actions/hoist
IMAGE_BIN     := bin/image
# The version stamped into the image's binary: `make image VERSION=0.2.0`
# (default: internal/spec's Version). -X sets internal/spec's `stamped`
# variable, which --version and the user agent report, and mkimage labels
# the image org.opencontainers.image.version with it.
IMAGE_VERSION  = $(or $(VERSION),$(shell sed -n 's/^const Version = "\(.*\)"/\1/p' internal/spec/version.go))
IMAGE_LDFLAGS  = -s -w -X github.com/hoist-ci/hoist/internal/spec.stamped=$(IMAGE_VERSION)

# Reproducible: every timestamp in the images is the last commit's.
# `make image IMAGE_PUSH=127.0.0.1:5000/hoist:dev` also pushes the image there.
image: export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
image: ## assemble the image (no daemon) into .cache/image.tar, and the rig's base and helper images
	@mkdir -p .cache
	rm -rf $(IMAGE_BIN) && mkdir -p $(IMAGE_BIN)
	go build -trimpath -ldflags "$(IMAGE_LDFLAGS)" -o $(IMAGE_BIN)/ $(IMAGE_CMDS)
	go build -o .cache/tools/bin/mkimage ./test/rig/mkimage
	mkimage --binaries $(IMAGE_BIN) --version $(IMAGE_VERSION) --tarball $(IMAGE_TAR)
	mkimage --tag $(BUSYBOX_TAG) --tarball $(BUSYBOX_TAR)
	mkimage --tag $(HELPER_TAG) --host-binary /bin/bash --host-binary $$(command -v rsync) --tarball $(HELPER_TAR)
	$(if $(IMAGE_PUSH),mkimage --binaries $(IMAGE_BIN) --version $(IMAGE_VERSION) --tag $(IMAGE_PUSH) --push)
	@echo "load them into the rig's engine: . $(RIG_ENV) && for f in $(IMAGE_TAR) $(BUSYBOX_TAR) $(HELPER_TAR); do docker load -i \$$f; done"

rig-install: ## install what the tests need and is missing (apt, npm, go install)
	test/rig/install.sh

rig-up: ## start the rig's private dockerd; then: . .cache/rig/env
	test/rig/up.sh

rig-down: ## stop the rig's dockerd
	test/rig/down.sh

# Every test, end-to-end suites included, after the linters (a lint failure
# fails the run but the tests still run). The engine is stopped even when the
# tests fail. `go test -json` is read by hoist's own gate, which counts the
# results, writes $(TEST_JUNIT) and fails on any failed test or package; the
# log shows each package's result as it ends.
test: rig-install ## lint, install and start the rig, run every test, stop the rig
	@mkdir -p .cache; : >$(TEST_JSON); status=0; lint=0; \
	$(MAKE) --no-print-directory lint || lint=1; \
	test/rig/up.sh || status=$$?; \
	if [ $$status -eq 0 ]; then \
	  ( set -o pipefail; . $(RIG_ENV) && go test -json -count=1 -timeout $(TEST_TIMEOUT) ./... 2>&1 | tee $(TEST_JSON) | test/rig/testlog.sh ) || status=$$?; \
	fi; \
	test/rig/down.sh || true; \
	go build -o .cache/tools/bin/gate ./actions/gate && \
	.cache/tools/bin/gate --go-test-json $(TEST_JSON) --junit-report $(TEST_JUNIT) --min-tests 1 >$(TEST_GATE) 2>&1 || status=$${status/#0/1}; \
	grep -vE '^[a-z-]+=' $(TEST_GATE) || true; \
	tests=$$(sed -n 's/^tests=//p' $(TEST_GATE)); failures=$$(sed -n 's/^failures=//p' $(TEST_GATE)); skipped=$$(sed -n 's/^skipped-tests=//p' $(TEST_GATE)); \
	echo "test: $$(( $${tests:-0} - $${failures:-0} - $${skipped:-0} )) passed, $${failures:-?} failed, $${skipped:-?} skipped (gate: $(TEST_JUNIT))"; \
	if [ $$lint -ne 0 ]; then echo "test: make lint failed (see above)"; status=$${status/#0/1}; fi; \
	exit $$status

test-short: ## the fast tests only (no rig needed), with the race detector
	CGO_ENABLED=1 go test -short -race -count=1 ./...

demo: build ## the example pipeline (gate, build-push, retag, bump, then deliver's pipelines) end to end on an embedded registry
	test/rig/demo-deps.sh
	go run ./examples/demo -bin bin

# The engine is up for the benchmarks whose peer runs in a container (kaniko).
bench: build rig-install ## every benchmark against its peers; writes bench/RESULTS.md
	@status=0; test/rig/up.sh || status=$$?; \
	if [ $$status -eq 0 ]; then \
	  ( . $(RIG_ENV) && failed=""; for d in bench/*/; do echo "go run ./$${d%/} --write"; go run ./$${d%/} --write || failed="$$failed $${d%/}"; done; \
	    if [ -n "$$failed" ]; then echo "benchmarks that failed:$$failed"; exit 1; fi ) || status=$$?; \
	fi; \
	test/rig/down.sh || true; \
	exit $$status

lint: ## gofmt, go vet and staticcheck (installed into .cache/tools on first use)
	@bad=$$(gofmt -l $(GO_FILES)); if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	go vet ./...
	@command -v staticcheck >/dev/null || GOBIN=$(CURDIR)/.cache/tools/bin go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK)
	staticcheck ./...

clean: ## remove built binaries and images (keeps installed tools and the engine's data)
	rm -rf bin $(IMAGE_TAR) $(BUSYBOX_TAR) $(HELPER_TAR) $(TEST_JSON) $(TEST_JUNIT) $(TEST_GATE)
