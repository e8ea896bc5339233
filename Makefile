# cvmkit — see README.md.
#   make demo   the main job on the quickstart example
#   make test   every test, after installing what the tests need
#   make test-short  the fast tier (-short) for day-to-day work
#   make lint   gofmt, go vet, staticcheck
GO          ?= go
# The Go tools the tests run (cosign, oras: scripts/install-deps.sh installs
# them with go install) are found without touching the user's PATH.
export PATH := $(PATH):$(shell $(GO) env GOPATH 2>/dev/null)/bin
BIN         := bin/cvmkit
# The version and commit come from git (the commit, never the clock), so the
# binaries stay reproducible; outside a git checkout they say "devel".
VERSION     := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT      := $(shell git rev-parse HEAD 2>/dev/null)
VERSIONPKG  := github.com/cvmkit/cvmkit/internal/version
GOBUILD     := CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags="-buildid= -X $(VERSIONPKG).version=$(VERSION) -X $(VERSIONPKG).commit=$(COMMIT)"
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GORELEASER  := github.com/goreleaser/goreleaser/v2@v2.15.1
QUICKSTART  := examples/quickstart

.PHONY: all build initbin deps demo-deps demo-inputs demo test test-short lint docs release-check snapshot test-action fuzz fuzz-smoke firmware firmware-check clean
all: build

# cvmkit embeds cmd/cvmkit-init (internal/initbin), built first. The helper
# programs cvmkit runs for SBOMs (syft) and keyless signing (sigstore-go) go
# beside it: they are separate to keep cvmkit's start-up fast.
build: initbin
	$(GOBUILD) -o $(BIN) ./cmd/cvmkit
	cd sbom && $(GOBUILD) -o ../bin/cvmkit-sbom ./cmd/cvmkit-sbom
	$(GOBUILD) -o bin/cvmkit-sigstore ./cmd/cvmkit-sigstore

initbin:
	./scripts/build-initbin.sh

deps:
	./scripts/install-deps.sh

# What make demo needs (the firmware recipes' toolchain: cvmkit release
# builds the quickstart's SEV-SNP firmware from source on the first run).
demo-deps:
	./scripts/install-deps.sh --demo

demo-inputs:
	$(QUICKSTART)/fetch-inputs.sh

# The main job on the quickstart example: validate the config, measure its
# SEV-SNP and TDX matrices, encrypt the weights (more stages as they land).
demo: build demo-inputs demo-deps
	CVMKIT=$(CURDIR)/$(BIN) $(QUICKSTART)/demo.sh

# make test builds what its own tests need (the embedded cvmkit-init, which
# example_gpu's release puts into an initrd), so it passes on a fresh clone.
test: deps demo-inputs initbin firmware
	./scripts/reproducible-build.sh
	$(GO) test -timeout 30m ./...
	cd sbom && $(GO) test -timeout 20m ./...

# The day-to-day tier: no QEMU boots, no reproducibility double builds.
test-short: initbin
	$(GO) test -short -timeout 10m ./...
	cd sbom && $(GO) test -short -timeout 10m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd sbom && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

# The GitHub Action's step run as the runner runs it, on the quickstart.
test-action: build demo-inputs
	./scripts/test-action.sh

# Regenerate docs/cvmkit.schema.json, docs/exit-codes.md and docs/cli.md.
docs:
	$(GO) test ./config -run 'TestSchemaInSync|TestKeyReferenceInSync' -update
	$(GO) test ./internal/cli -run TestGeneratedDocs -update

release-check:
	$(GO) run $(GORELEASER) check

# The release built twice as goreleaser does (this platform, nothing
# published): identical archives with completions, man pages and SBOMs; the
# container image built twice from it (same digest); then the GitHub Action
# installs cvmkit from it over loopback.
snapshot:
	./scripts/snapshot-check.sh
	./scripts/image-check.sh
	./scripts/test-action.sh dist

# Run every fuzz target for FUZZTIME each (every result and exec count is
# reported; a failing target does not stop the others).
FUZZTIME ?= 1m
fuzz:
	./scripts/fuzz-all.sh $(FUZZTIME)

# The amdsev firmware (SEV-SNP kernel hashes) built from pinned source into
# the quickstart's cache: a few minutes the first time, then taken from the
# cache by its recipe digest (docs/firmware.md). The SNP vectors of the
# built firmware (TestBuiltAmdSevVectors) read it there.
firmware: build
	$(BIN) firmware build amdsev --cache $(QUICKSTART)/cache/firmware -o $(QUICKSTART)/cache/OVMF.amdsev.fd

# The firmware recipes built twice (other folder, time zone, umask, locale)
# and compared byte for byte (docs/firmware.md): a few minutes each.
firmware-check: build
	./scripts/firmware-check.sh amdsev
	./scripts/firmware-check.sh tdx

# CI's fuzz tier: every target for a few seconds, so a target that no
# longer builds, crashes on its seeds or stalls is seen.
fuzz-smoke:
	./scripts/fuzz-all.sh 3s

clean:
	rm -rf bin dist
