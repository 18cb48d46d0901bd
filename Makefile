# The two commands that matter: `make sandbox` and `make test`. Each builds .venv itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: sandbox test lint typecheck unit bench mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

sandbox: $(STAMP)
	$(BIN)/serviceplatform sandbox

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# tests/servers.sh brings up PostgreSQL, RabbitMQ and Chromium (as root on Debian: installs and
# starts what is missing; otherwise one line per missing server), then runs pytest.
test: lint typecheck
	bash tests/servers.sh $(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/passthrough.py

# Mutation testing (mutmut) of security, routing, the replay cache, the sending ledger, the
# NemSMS rules and the snapshot diff against the unit tests; hours on two cores, so not part
# of `make test`. GROUPS="security routing" runs some groups only (bench/mutation.py).
mutation: $(STAMP)
	$(BIN)/python bench/mutation.py $(GROUPS)

clean:
	rm -rf $(VENV) .sandbox .mypy_cache .pytest_cache .ruff_cache mutants
