# pgfortress — every entry point people and CI use.
#
#   make demo    install what is needed, boot a lab, deploy, verify, print how to connect
#   make test    lint, type-check, unit tests, the lab end-to-end tests and the attack suite
#                (needs root)
#   make attack  the attack suite alone (tests/attack, needs root)
#   make check   ruff and mypy only

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LAB ?= demo
export PGFORTRESS_LAB := $(LAB)

.PHONY: deps venv check format unit lab-tests attack test demo demo-down clean

deps:
	@scripts/install-system-deps.sh

$(BIN)/pgfortress: pyproject.toml gateway/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]' -e ./gateway
	@touch $@

venv: $(BIN)/pgfortress

check: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: venv
	$(BIN)/pytest tests/unit tests/gateway

lab-tests: deps venv
	$(BIN)/pytest tests/lab

attack: deps venv
	$(BIN)/pytest tests/attack

test: deps venv check
	$(BIN)/pytest tests/unit tests/gateway tests/lab tests/attack

demo: deps venv
	@scripts/demo.sh $(LAB)

demo-down: venv
	$(BIN)/pgfortress lab down --name $(LAB)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache build dist *.egg-info
