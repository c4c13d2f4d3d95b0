# The two commands of the README:
#   make demo   run the main job: start Kafka + ClickHouse if needed, build
#               bin/vigil, run the processor and a simulated model service,
#               print the window table
#   make test   run every test against real Kafka and ClickHouse (started if needed)
SHELL := /bin/bash
.DEFAULT_GOAL := build
.PHONY: build demo test bench fuzz vet

build:
	go build -o bin/vigil ./cmd/vigil

demo:
	deployments/local/demo.sh

test:
	deployments/local/test.sh

vet:
	go vet ./...

# Benchmarks (not run by `make test`); see benchmarks/README.md.
bench:
	go test -run '^$$' -bench . -benchmem -count 5 ./benchmarks/... ./ingest/... ./processors/... ./schemas/...

# Longer fuzzing of one target, e.g. `make fuzz FUZZ=FuzzDecodeJSON PKG=./schemas/wire`.
fuzz:
	go test -run '^$$' -fuzz '^$(FUZZ)$$' -fuzztime 5m $(PKG)
