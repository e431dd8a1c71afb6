# kinc: build, test, lint. `make test` is what CI runs (.ci/run) and what
# README tells a newcomer to run; it needs root and the daemons that
# .ci/setup-runtimes starts. `make test-short` is the quick inner loop.
SHELL := /bin/bash
GO ?= go
BIN ?= bin/kinc
PREFIX ?= /usr/local
TAGS := remote exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/kinc-dev/kinc/cli.version=$(VERSION) -X github.com/kinc-dev/kinc/cli.commit=$(COMMIT)
export CGO_ENABLED := 0
export GOFLAGS := -buildvcs=false
# Which real daemons the runtime conformance suite and cluster tests use.
export KINC_TEST_RUNTIMES ?= podman docker containerd
# Long real tests (image builds, clusters) need more than go test's 10m default.
TEST_TIMEOUT ?= 80m

.PHONY: build test test-short lint install bench clean

build:
	$(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN) .

# Packages run one at a time: the machine has 2 cores and the real tests
# share daemons.
test: build
	$(GO) test -tags "$(TAGS)" -p 1 -timeout $(TEST_TIMEOUT) -count=1 ./...

test-short:
	$(GO) test -tags "$(TAGS)" -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags "$(TAGS)" ./...

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/kinc

bench:
	$(GO) test -tags "$(TAGS)" -p 1 -run '^$$' -bench . -benchtime 3x ./...

clean:
	rm -rf bin
