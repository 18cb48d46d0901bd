# The two commands that matter: `make sandbox` and `make test`. Each builds .venv itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The PyPI package as4, the independent AS4 partner of tests/integration/test_as4_peer_interop.py,
# in a venv of its own: it needs cryptography<47, the platform a newer one.
PEER_VENV := .venv-as4peer
PEER_STAMP := $(PEER_VENV)/.installed

.PHONY: sandbox test lint typecheck unit bench bench-as4 clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

$(PEER_STAMP): tests/as4_peer/requirements.txt
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install -q --upgrade pip
	$(PEER_VENV)/bin/pip install -q -r tests/as4_peer/requirements.txt
	touch $(PEER_STAMP)

sandbox: $(STAMP)
	$(BIN)/serviceplatform sandbox

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# tests/servers.sh brings up PostgreSQL, RabbitMQ and Chromium (as root on Debian: installs and
# starts what is missing; otherwise one line per missing server), then runs pytest.
test: lint typecheck $(PEER_STAMP)
	bash tests/servers.sh $(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/passthrough.py

# The native AS4 sender: build, sign, encrypt, send a 100 KB OOTS request to a local partner.
bench-as4: $(STAMP)
	$(BIN)/python bench/as4.py

clean:
	rm -rf $(VENV) $(PEER_VENV) .sandbox .mypy_cache .pytest_cache .ruff_cache
