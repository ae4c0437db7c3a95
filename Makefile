# Entry points for developers and CI (.ci/run).
#   make setup   set up this machine, as root: Docker, runc, the registry mirror on 127.0.0.1:5000, bin/ (scripts/setup.sh)
#   make build   bin/buildkitd (the version go.mod pins) and bin/envd
#   make lint    go vet and a gofmt check
#   make test    every test, end-to-end included; `make test ENVD_E2E=0` runs only the tests that need no daemons
GO ?= go

# The end-to-end tests check this variable; they need `make setup` first.
ENVD_E2E ?= 1
export ENVD_E2E

# BuildKit reports v0.0.0+unknown unless its version is stamped at link time.
BUILDKIT_VERSION = $(shell $(GO) list -m -f '{{.Version}}' github.com/moby/buildkit)

.PHONY: setup build lint test

setup:
	bash scripts/setup.sh

build:
	$(GO) build -ldflags "-X github.com/moby/buildkit/version.Version=$(BUILDKIT_VERSION)" \
		-o bin/buildkitd github.com/moby/buildkit/cmd/buildkitd
	@if [ -d cmd/envd ]; then \
		echo "$(GO) build -o bin/envd ./cmd/envd"; $(GO) build -o bin/envd ./cmd/envd; \
	else echo "skipping bin/envd: ./cmd/envd does not exist yet"; fi

lint:
	$(GO) vet ./...
	@unformatted=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './vendor/*' \
		| xargs -r gofmt -l); \
	if [ -n "$$unformatted" ]; then echo "gofmt -w needed on:"; echo "$$unformatted"; exit 1; fi

test:
	$(GO) test -count=1 -timeout 40m ./...
