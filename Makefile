# Two commands do everything: `make run` and `make test`. Each creates .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
TERRAFORM ?= terraform
TF := $(TERRAFORM) -chdir=infra

.PHONY: bench soak run test demo authorize secrets doctor backfill package plan deploy checkov validate lint typecheck unit integration e2e clean

$(STAMP): requirements-dev.txt functions/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# The google provider schema `make validate` checks against: the jsii assembly inside this
# cdktf package, generated from hashicorp/google 6.50.0 (keep PACKAGE_VERSION in
# infra/validate/schema.py the same). Downloaded, never installed: it would pull cdktf and jsii.
TFSCHEMA_DIR := .cache/tfschema
TFSCHEMA_PACKAGE_VERSION := 16.12.1
TFSCHEMA := $(TFSCHEMA_DIR)/google-schema-$(TFSCHEMA_PACKAGE_VERSION).json

$(TFSCHEMA): infra/validate/schema.py | $(STAMP)
	$(BIN)/pip download --quiet --no-deps cdktf-cdktf-provider-google==$(TFSCHEMA_PACKAGE_VERSION) -d $(TFSCHEMA_DIR)
	$(BIN)/python -m infra.validate.schema

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

## Start the stand-ins and serve every function on http://127.0.0.1:8080/<entry_point>.
run: $(STAMP)
	$(BIN)/python -m sandbox.run

## Against a running `make run`: create, change and delete a meeting; show the event each time.
demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

## One-time Google consent; writes google-oauth-token (and the client file) to the secrets
## backend the environment names. CLIENT_FILE=client_secret.json, NO_BROWSER=1 without a browser.
authorize: $(STAMP)
	PYTHONPATH=functions $(BIN)/python -m bpium_calendar.commands.authorize \
		$(if $(CLIENT_FILE),--client-file "$(CLIENT_FILE)") $(if $(NO_BROWSER),--no-browser)

## Put the Bpium secrets into the backend the environment names, at hidden prompts. ONLY=api-key
secrets: $(STAMP)
	PYTHONPATH=functions $(BIN)/python -m bpium_calendar.commands.put_secrets $(if $(ONLY),--only $(ONLY))

## Check a deployment's settings, secrets, Google and Bpium (FIELDS=1: propose BPIUM_FIELDS;
## LOCAL=1: the settings of a running `make run`).
doctor: $(STAMP)
	$(if $(LOCAL),set -a && . ./.sandbox/local.env && set +a &&) \
	PYTHONPATH=functions $(BIN)/python -m bpium_calendar.commands.doctor $(if $(FIELDS),fields)

## Reconcile any window, e.g. FROM=2026-01-01 TO=2027-01-01 [DRY_RUN=1] (the day of install);
## ADOPT=1 first: mark the old BPMN scenario's events as their meetings' (with DRY_RUN=1: list).
backfill: $(STAMP)
	$(if $(LOCAL),set -a && . ./.sandbox/local.env && set +a &&) \
	PYTHONPATH=functions $(BIN)/python -m bpium_calendar.commands.backfill --from "$(FROM)" --to "$(TO)" $(if $(DRY_RUN),--dry-run) $(if $(ADOPT),--adopt)

## The exact zip Terraform uploads, in .build/functions.zip.
package: $(STAMP)
	$(BIN)/python infra/package.py

define need_terraform
	@command -v $(TERRAFORM) >/dev/null 2>&1 || { echo "Terraform is not installed: see https://developer.hashicorp.com/terraform/install (1.6 or newer), then run this again."; exit 1; }
	@test -f infra/terraform.tfvars || { echo "infra/terraform.tfvars is missing: copy infra/terraform.tfvars.example and fill it in."; exit 1; }
endef

## terraform init + plan (needs Terraform and infra/terraform.tfvars).
plan: package
	$(need_terraform)
	$(TF) init -input=false
	$(TF) plan -input=false -out=tfplan

## Apply the plan `make plan` saved (or plan and apply when there is none).
deploy: package
	$(need_terraform)
	$(TF) init -input=false
	@if [ -f infra/tfplan ]; then $(TF) apply -input=false tfplan && rm -f infra/tfplan; else $(TF) apply -input=false; fi
	$(TF) output

## Static security checks of infra/ (offline), every framework checkov runs by default.
checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --directory infra --quiet --compact --skip-download

## infra/ against the google provider's schema, offline: the schema checker, and real
## `terraform validate` with a schema-only provider plugin when Terraform is installed.
validate: $(TFSCHEMA)
	TERRAFORM="$(TERRAFORM)" $(BIN)/python -m infra.validate

lint: $(STAMP)
	$(BIN)/ruff check functions sandbox tests infra
	$(BIN)/ruff format --check functions sandbox tests infra

typecheck: $(STAMP)
	$(BIN)/mypy functions infra/validate

## Lint, type-check, then every test with branch coverage of functions/ (>= 90%), in
## TEST_JOBS processes (each with its own stand-ins and Firestore emulator).
TEST_JOBS ?= 3
test: lint typecheck checkov validate
	$(BIN)/pytest -n $(TEST_JOBS) --dist worksteal --cov --cov-report=term

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP) $(TFSCHEMA)
	$(BIN)/pytest tests/integration tests/sandbox tests/infra

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

## Speed and round trips, measured against the stand-ins; writes docs/PERFORMANCE.md.
bench: $(STAMP)
	PYTHONPATH=functions $(BIN)/python -m sandbox.bench

## Longer runs of the fault, concurrency and fuzz tests, outside CI (a few minutes).
soak: $(STAMP)
	SOAK_MEETINGS=300 SOAK_CONCURRENT=1000 SOAK_EXAMPLES=2000 \
		$(BIN)/pytest -p no:cacheprovider --timeout 1200 tests/integration/test_faults.py \
		tests/e2e/test_concurrency.py tests/integration/test_hostile_input.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .cache .build .pytest_cache .mypy_cache .ruff_cache .coverage
