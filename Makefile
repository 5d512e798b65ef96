# Switchboard: `make run` serves the inbox, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app wsgi
PYTEST_ARGS ?=

.PHONY: run test test-fast lint format bench worker system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip uv

$(VENV)/.installed: requirements.txt | $(PY)
	$(VENV)/bin/uv pip install -q --python $(PY) -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(VENV)/bin/uv pip install -q --python $(PY) -r requirements-dev.txt
	touch $@

## run: install, migrate the embedded SQLite database, create the first admin, serve on :5000
run: $(VENV)/.installed
	$(FLASK) db upgrade
	$(FLASK) bootstrap
	$(PY) wsgi.py

## worker: the background process for scale-out layouts (scheduler + delivery)
worker: $(VENV)/.installed
	$(FLASK) worker

## system-deps: Chromium + driver for browser tests, Dovecot for IMAP tests (Debian, as root)
system-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && [ -x /usr/sbin/dovecot ]; then \
		echo "system test dependencies present"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver dovecot-imapd >/dev/null; \
	else \
		echo "warning: chromium/chromedriver/dovecot missing and cannot apt-get install: those tests will skip"; \
	fi

## test: install test needs and run the whole suite (in parallel)
test: $(VENV)/.installed-dev system-deps
	$(PY) -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## bench: start the real server and measure (prints a table, writes bench/results/)
bench: $(VENV)/.installed-dev
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
