# Two commands matter: `make serve` and `make test`. Everything else is here for them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := clients/typescript/node_modules/.bin/buf
STAMP := $(VENV)/.installed

.PHONY: serve test install lint proto proto-check buf bench bench-paired bench-stream bench-callbacks clean \
	go-tools clients clean-clients

$(STAMP): pyproject.toml clients/python/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e clients/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(BUF): clients/typescript/package.json clients/typescript/package-lock.json
	# `npm ci` rejects npm 11's own lock files when optional platform packages are involved
	# (buf ships one per platform); `npm install` honours the same pinned lock.
	cd clients/typescript && npm install --no-audit --no-fund --loglevel=error
	touch $(BUF)

# The Go client's generator plugins from Debian's packages (no Go module proxy on these
# machines), and the Go toolchain and sources its tests build with, unpacked from Debian's
# packages into .go-tools by clients/go/tools/fetch.sh: see clients/go/README.md.
GO_DEBS := protoc-gen-go protoc-gen-go-grpc
GO_TOOLS := .go-tools

# Best effort: Debian's packages give the Go plugins and sources offline. Elsewhere the Go
# client tests skip with that reason (clients/go/README.md says how to build it).
go-tools:
	@dpkg -s $(GO_DEBS) >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends $(GO_DEBS) >/dev/null; } \
		|| echo "note: Go plugins not installed; the Go client tests will be skipped"
	@clients/go/tools/fetch.sh $(GO_TOOLS) \
		|| echo "note: Go toolchain not fetched; the Go client tests will be skipped"

# What another repository consumes: the Python wheel (clients/python/dist) and the npm
# tarball (clients/typescript/dist); Go is consumed from git (clients/go/README.md).
# tests/clients/test_client_artefacts.py runs this and installs both.
clients: install $(BUF)
	rm -rf clients/python/dist clients/typescript/dist
	$(PY) -m pip wheel --quiet --no-deps -w clients/python/dist clients/python
	mkdir -p clients/typescript/dist
	cd clients/typescript && npm pack --silent --pack-destination dist >/dev/null

clean-clients:
	rm -rf clients/python/dist clients/typescript/dist $(GO_TOOLS)

serve: install
	$(VENV)/bin/malipo serve

test: install $(BUF) go-tools
	$(PY) clients/python/generate.py --check
	$(BUF) lint protos
	$(BUF) breaking protos --against '.git#branch=main,subdir=protos'
	$(VENV)/bin/ruff check service tests clients/python
	$(VENV)/bin/pyright
	$(VENV)/bin/lint-imports
	$(VENV)/bin/bandit -q -c pyproject.toml -r service
	@.ci/pip-audit $(VENV)  # fails on a known vulnerability of a pin (the script says how)
	$(VENV)/bin/pytest -n 2 --dist loadfile

lint: install $(BUF)
	$(VENV)/bin/ruff check service tests clients/python
	$(VENV)/bin/pyright
	$(VENV)/bin/lint-imports
	$(BUF) lint protos

proto: install $(BUF) go-tools
	$(PY) clients/python/generate.py
	cd clients/typescript && node_modules/.bin/buf generate
	cd clients/go && ../typescript/node_modules/.bin/buf generate

$(VENV)/.bench-installed: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $@

# A few minutes with modest defaults; longer runs: .venv/bin/python -m tests.bench.run --help
bench: install $(VENV)/.bench-installed
	$(PY) -m tests.bench.run $(BENCH_ARGS)

# The floor ratios from ABBA-interleaved slices, floor and Malipo side by side (steadier on
# a shared machine than floor-then-Malipo; tests/bench/paired.py --help).
bench-paired: install $(VENV)/.bench-installed
	$(PY) -m tests.bench.paired $(PAIRED_ARGS)

# WatchStatus fan-out over gRPC: 1k and 10k streams on one `malipo serve`, 1k transitions/s,
# one line per count (tests/bench/stream_fanout.py --help; --in-process: the hub alone).
bench-stream: install $(VENV)/.bench-installed
	$(PY) -m tests.bench.stream_fanout --subscribers 1000 10000 $(STREAM_ARGS)

# The bare aiohttp baseline and signed simulator callbacks only (no gRPC scenarios).
bench-callbacks: install $(VENV)/.bench-installed
	$(PY) -m tests.bench.run --only callbacks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) clients/typescript/node_modules .pytest-pg .bench-pg
