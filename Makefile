# Two commands for a newcomer: `make demo` and `make test`. Both set up everything on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
ANVIL := node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: demo test lint format setup system-deps clean contracts contracts-check messages screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(ANVIL): package.json
	npm install --no-audit --no-fund --silent
	test -x $(ANVIL)
	touch $(ANVIL)

# Debian packages the browser and QR tests need (Chromium for Playwright, zbarimg to decode QR codes), and gettext
# (makemessages / compilemessages: the tests check the shipped translation catalogues against the code).
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v zbarimg >/dev/null || ! command -v msgfmt >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium zbar-tools gettext >/dev/null; \
	fi
	@command -v chromium >/dev/null && command -v zbarimg >/dev/null && command -v msgfmt >/dev/null

setup: $(VENV)/.installed $(ANVIL) system-deps

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py check --fail-level WARNING
	ANVIL_BIN=$(CURDIR)/$(ANVIL) $(BIN)/pytest $(PYTEST_ARGS)

demo: setup
	ANVIL_BIN=$(CURDIR)/$(ANVIL) $(BIN)/python -m example_shop.demo

# Rebuild the dev-chain contract artifacts (payments_gateway/chain/contracts/artifacts) with solcjs from npm.
contracts: $(ANVIL) | $(BIN)/python
	$(BIN)/python scripts/build_contracts.py

contracts-check: $(ANVIL) | $(BIN)/python
	$(BIN)/python scripts/build_contracts.py --check

# After changing a customer-facing string: update the catalogues, translate the new entries, compile them.
messages: setup
	cd payments_gateway && ../$(BIN)/django-admin makemessages --no-wrap --no-location -l de -l es -l fr
	cd payments_gateway && ../$(BIN)/django-admin compilemessages

# PNGs of the hosted pages (chooser, waiting, partially paid, paid, expired; phone and desktop) for the README.
screenshots: setup
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots ANVIL_BIN=$(CURDIR)/$(ANVIL) $(BIN)/pytest -q \
		tests/test_browser_accessibility.py -k no_serious_accessibility_violations

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports && $(BIN)/mypy

format:
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules var
