# The two commands that matter: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-fast lint fmt bench chaos clean

$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## make run: everything up on the embedded default (SQLite + filesystem broker), with demo data.
run: $(VENV)/.installed-run
	DEBUG=true READINESS_ALLOW_PRIVATE_ENDPOINTS=true $(PY) manage.py migrate --noinput -v 0
	DEBUG=true READINESS_ALLOW_PRIVATE_ENDPOINTS=true $(PY) manage.py seed_demo
	DEBUG=true READINESS_ALLOW_PRIVATE_ENDPOINTS=true $(PY) manage.py runstack

## make test: the whole suite (browser tests need Debian's chromium; installed here if absent).
test: $(VENV)/.installed-test
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -m "not browser and not worker" $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

fmt: $(VENV)/.installed-test
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.installed-test
	@for f in bench/[a-z]*.py; do case $$f in bench/tiny_gguf.py|bench/chaos.py) continue;; esac; echo "== $$f"; $(PY) $$f || exit 1; done

# Faults injected into real processes (its own PostgreSQL + Redis); .ci/run runs it too.
chaos: $(VENV)/.installed-test
	$(PY) bench/chaos.py

clean:
	rm -rf var/ .pytest_cache
