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
TEST_LOG     := .cache/test.log
GO_FILES      = $(shell find . -name '*.go' -not -path './.cache/*' -not -path './.git/*' -not -path '*/testdata/*')

.PHONY: help build generate image rig-install rig-up rig-down test test-short demo bench lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-11s %s\n", $$1, $$2 }'

build: ## build every tool (actions/*) statically into bin/
	go build -trimpath -o bin/ ./actions/...

generate: ## regenerate action.yml files, template inputs and docs tables from internal/spec
	go generate ./...

# Reproducible: every timestamp in the images is the last commit's.
# `make image IMAGE_PUSH=127.0.0.1:5000/hoist:dev` also pushes the image there.
image: export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
image: build ## assemble the image (no daemon) into .cache/image.tar, and the rig's base and helper images
	@mkdir -p .cache
	go build -o .cache/tools/bin/mkimage ./test/rig/mkimage
	mkimage --binaries bin --tarball $(IMAGE_TAR)
	mkimage --tag $(BUSYBOX_TAG) --tarball $(BUSYBOX_TAR)
	mkimage --tag $(HELPER_TAG) --host-binary /bin/bash --host-binary $$(command -v rsync) --tarball $(HELPER_TAR)
	$(if $(IMAGE_PUSH),mkimage --binaries bin --tag $(IMAGE_PUSH) --push)
	@echo "load them into the rig's engine: . $(RIG_ENV) && for f in $(IMAGE_TAR) $(BUSYBOX_TAR) $(HELPER_TAR); do docker load -i \$$f; done"

rig-install: ## install what the tests need and is missing (apt, npm, go install)
	test/rig/install.sh

rig-up: ## start the rig's private dockerd; then: . .cache/rig/env
	test/rig/up.sh

rig-down: ## stop the rig's dockerd
	test/rig/down.sh

# Every test, end-to-end suites included. The engine is stopped even when the
# tests fail; the exit status is the tests'.
test: rig-install ## install and start the rig, run every test, stop the rig
	@mkdir -p .cache; : >$(TEST_LOG); status=0; \
	test/rig/up.sh || status=$$?; \
	if [ $$status -eq 0 ]; then \
	  ( . $(RIG_ENV) && go test -v -count=1 -timeout $(TEST_TIMEOUT) ./... ) 2>&1 | tee $(TEST_LOG) || status=$$?; \
	fi; \
	test/rig/down.sh || true; \
	passed=$$(grep -cE '^ *--- PASS' $(TEST_LOG) || true); \
	failed=$$(grep -cE '^ *--- FAIL' $(TEST_LOG) || true); \
	skipped=$$(grep -cE '^ *--- SKIP' $(TEST_LOG) || true); \
	if [ $$status -ne 0 ] && [ $$failed -eq 0 ]; then failed=1; fi; \
	if [ $$status -ne 0 ]; then grep -E '^(FAIL|--- FAIL|panic:)' $(TEST_LOG) || true; fi; \
	echo "test: $$passed passed, $$failed failed, $$skipped skipped"; \
	exit $$status

test-short: ## the fast tests only (no rig needed)
	go test -short -count=1 ./...

demo: build ## the example pipeline (gate, build-push, retag, bump) end to end on an embedded registry
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

lint: ## gofmt and go vet
	@bad=$$(gofmt -l $(GO_FILES)); if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	go vet ./...

clean: ## remove built binaries and images (keeps installed tools and the engine's data)
	rm -rf bin $(IMAGE_TAR) $(BUSYBOX_TAR) $(HELPER_TAR) $(TEST_LOG)
