# The two commands that matter: `make sandbox` and `make test`. Each builds .venv itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: sandbox test lint typecheck unit bench bench-nightly clean

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

# Both benchmarks run; the exit status is 1 if one failed, else 2 if a goal was missed.
bench: $(STAMP)
	@a=0; b=0; $(BIN)/python bench/passthrough.py || a=$$?; \
	$(BIN)/python bench/nightly.py || b=$$?; \
	if [ $$a -eq 1 ] || [ $$b -eq 1 ]; then exit 1; fi; \
	if [ $$a -ne 0 ] || [ $$b -ne 0 ]; then exit 2; fi

# The nightly diff at 1 M and 6 M entries (bench/nightly.py); SP_TEST_POSTGRES_URL and
# SP_TEST_AMQP_URL add PostgreSQL and AMQP delivery.
bench-nightly: $(STAMP)
	$(BIN)/python bench/nightly.py

clean:
	rm -rf $(VENV) .sandbox .mypy_cache .pytest_cache .ruff_cache
