# Common tasks. `make test` is the test command the README and CI use.
GO ?= go

.PHONY: build test e2e bench vet

build:
	$(GO) build -o bin/berth ./cmd/berth

vet:
	$(GO) vet ./...

# Unit, integration and end-to-end tests (the last need a Docker engine: see
# scripts/setup.sh). Test images are cached by tag, so a second run is faster.
test: vet
	$(GO) test -count=1 -timeout 80m ./...

e2e:
	$(GO) test -count=1 -timeout 60m -v ./test/e2e/

# Benchmarks: scheduler placements/s and 100 replicas converging beside
# docker run and docker-compose (see docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench . -timeout 60m ./bench/
