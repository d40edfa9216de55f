# Two commands do everything: `make run` and `make test`. Each creates .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test demo authorize lint typecheck unit integration e2e clean

$(STAMP): requirements-dev.txt functions/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

## Start the stand-ins and serve every function on http://127.0.0.1:8080/<entry_point>.
run: $(STAMP)
	$(BIN)/python -m sandbox.run

## Against a running `make run`: create, change and delete a meeting; show the event each time.
demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

## One-time Google consent; writes google-oauth-token (and the client file) to the secrets
## backend the environment names. CLIENT_FILE=client_secret.json, NO_BROWSER=1 without a browser.
authorize: $(STAMP)
	PYTHONPATH=functions $(BIN)/python -m bpium_calendar.authorize \
		$(if $(CLIENT_FILE),--client-file "$(CLIENT_FILE)") $(if $(NO_BROWSER),--no-browser)

lint: $(STAMP)
	$(BIN)/ruff check functions sandbox tests
	$(BIN)/ruff format --check functions sandbox tests

typecheck: $(STAMP)
	$(BIN)/mypy functions

## Lint, type-check, then every test with branch coverage of functions/ (>= 90%).
test: lint typecheck
	$(BIN)/pytest --cov --cov-report=term

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration tests/sandbox

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
