# Entry points for developers and CI (.ci/run).
#   make setup   set up this machine, as root: Docker, runc, the registry mirror on 127.0.0.1:5000, bin/ (scripts/setup.sh)
#   make build   bin/envd (which is also its own buildkitd: internal/bkdaemon), bin/envd-agent and
#                bin/envd-handover, all static
#   make wheels  dist/: Python wheels of those binaries (static, linux x86_64 and aarch64) and an sdist that
#                refuses to build (tools/wheels); pip install a wheel and envd is on the venv's PATH
#   make agents  bin/envd-agent-linux-amd64 and bin/envd-agent-linux-arm64 (static): envd finds the one of
#                the image's architecture beside bin/envd, for envd build --platform linux/arm64 on an amd64
#                machine (and the other way round)
#   make cross   everything (envd, envd-agent, envd-handover included) builds for linux/arm64; nothing is kept
#   make lint    go vet and a gofmt check
#   make test    every test, end-to-end included (then, alone, the one that restarts dockerd);
#                `make test ENVD_E2E=0` runs only the tests that need no daemons
GO ?= go

# The end-to-end tests check this variable; they need `make setup` first.
ENVD_E2E ?= 1
export ENVD_E2E

# envd's version, stamped at link time: the commit (and -dirty) of this checkout, so that a new build of envd
# rebuilds environments rather than calling them up to date (go install @VERSION gets the module's version).
ENVD_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

# BuildKit reports v0.0.0+unknown unless its version is stamped at link time.
BUILDKIT_VERSION = $(shell $(GO) list -m -f '{{.Version}}' github.com/moby/buildkit)

#   make bench        the benchmark (root, after setup; ~35 min): envd build vs docker build → docs/benchmarks.md, .svg
#   make bench-smoke  envd only, tiny wheels (~1 min): fails on a re-download, a reinstall or a no-op solve
BENCH_FLAGS ?=

#   make fuzz-smoke   FuzzLoad for 30 s from its seeds (testdata/fuzz): no panic, hang or unbounded memory
FUZZTIME ?= 30s

# Where make wheels writes envd-VERSION-py3-none-manylinux_2_17_{x86_64,aarch64}.*.whl and envd-VERSION.tar.gz.
WHEELS_DIR ?= dist

.PHONY: setup build wheels agents cross lint test bench bench-smoke fuzz-smoke

setup:
	bash scripts/setup.sh

build:
	@# Left by builds before envd was its own buildkitd: one beside envd would be run instead of envd.
	rm -f bin/buildkitd bin/buildctl
	# Static: envd is its own buildkitd, in the builder container too, and can be its own agent, buildctl
	# and envd-handover (internal/multicall). BuildKit's version is stamped as a release's buildkitd has it.
	CGO_ENABLED=0 $(GO) build -ldflags "-X envd.dev/envd/internal/cli.Version=$(ENVD_VERSION) \
		-X github.com/moby/buildkit/version.Version=$(BUILDKIT_VERSION)" -o bin/envd ./cmd/envd
	# Static: it runs in any image envd builds, whatever its libc.
	CGO_ENABLED=0 $(GO) build -o bin/envd-agent ./cmd/envd-agent
	# Static, into the builder image: the hand-over registry of a builder on another machine.
	CGO_ENABLED=0 $(GO) build -o bin/envd-handover ./cmd/envd-handover

# The three binaries static and cross-compiled (never run here); VERSION is ENVD_VERSION made PEP 440
# (tools/wheels/version.go), and `envd version` prints that same version.
wheels:
	$(GO) run ./tools/wheels -version "$(ENVD_VERSION)" -buildkit-version "$(BUILDKIT_VERSION)" -out "$(WHEELS_DIR)"

agents:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -o bin/envd-agent-linux-amd64 ./cmd/envd-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -o bin/envd-agent-linux-arm64 ./cmd/envd-agent

# -o /dev/null builds every package, the main ones (cmd/envd, cmd/envd-agent, cmd/envd-handover, bench)
# linked too, and keeps nothing.
cross:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -o /dev/null ./...

lint:
	$(GO) vet ./...
	@unformatted=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './vendor/*' \
		| xargs -r gofmt -l); \
	if [ -n "$$unformatted" ]; then echo "gofmt -w needed on:"; echo "$$unformatted"; exit 1; fi

test:
	$(GO) test -count=1 -timeout 40m ./...
ifeq ($(ENVD_E2E),1)
	@# It restarts the machine's dockerd (when scripts/setup.sh started it), so it runs alone, after the rest.
	cd e2e && ENVD_E2E_RESTART_DOCKER=1 $(GO) test -count=1 -timeout 10m -run '^TestLifecycleDockerRestart$$' .
endif

fuzz-smoke:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/lang/

bench: build
	$(GO) run ./bench $(BENCH_FLAGS)

bench-smoke: build
	$(GO) run ./bench -smoke $(BENCH_FLAGS)
