# Common tasks. `make test` is the test command the README and CI use.
GO ?= go

.PHONY: build test e2e bench vet fuzz

build:
	$(GO) build -o bin/berth ./cmd/berth

vet:
	$(GO) vet ./...

# Unit, integration and end-to-end tests (the last need a Docker engine: see
# scripts/setup.sh). Test images are cached by tag, so a second run is faster.
test: vet fuzz
	$(GO) test -count=1 -timeout 80m ./...

# Every fuzz target (func FuzzX in a _test.go file), each for FUZZTIME: the
# Compose loader and the API's request decoders must refuse what they cannot
# read, never panic. A failure leaves its input under the package's
# testdata/fuzz/, where `go test` replays it from then on.
# The budget is a count of inputs, not a duration: Go 1.26's fuzz
# coordinator can report a bare "context deadline exceeded" when a
# duration ends while a starved worker is mid-input (golang/go#75804, fixed
# in Go 1.27), which failed CI on a loaded machine with no input to blame.
FUZZTIME ?= 3000x
fuzz:
	@set -e; for file in $$(grep -rl --include='*_test.go' '^func Fuzz' internal api cmd test 2>/dev/null | sort); do \
		pkg=./$$(dirname $$file); \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "fuzz $$target ($$pkg) for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

e2e:
	$(GO) test -count=1 -timeout 60m -v ./test/e2e/

# Benchmarks: scheduler placements/s and 100 replicas converging beside
# docker run and docker-compose (see docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench . -timeout 60m ./bench/
