# Two commands matter: `make serve` and `make test`. Everything else is here for them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := clients/typescript/node_modules/.bin/buf
STAMP := $(VENV)/.installed

.PHONY: serve test install lint proto proto-check buf bench clean

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

serve: install
	$(VENV)/bin/malipo serve

test: install $(BUF)
	$(PY) clients/python/generate.py --check
	$(BUF) lint protos
	$(BUF) breaking protos --against '.git#branch=main,subdir=protos'
	$(VENV)/bin/ruff check service tests clients/python
	$(VENV)/bin/pyright
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -n 2 --dist loadfile

lint: install $(BUF)
	$(VENV)/bin/ruff check service tests clients/python
	$(VENV)/bin/pyright
	$(VENV)/bin/lint-imports
	$(BUF) lint protos

proto: install
	$(PY) clients/python/generate.py

bench: install
	$(PY) -m tests.bench.run

clean:
	rm -rf $(VENV) clients/typescript/node_modules .pytest-pg
