"""infra/ parses, and agrees with the code; each check fails when one side alone changes."""

from __future__ import annotations

import copy
import glob
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import hcl2
import pytest

from tests.infra import agreement
from tests.infra.agreement import ROOT

MAIN = (ROOT / "functions" / "main.py").read_text()
SETTINGS = (ROOT / "functions" / "bpium_calendar" / "settings.py").read_text()
SECRET_STORE = (ROOT / "functions" / "bpium_calendar" / "secret_store.py").read_text()


@pytest.fixture(scope="module")
def infra() -> dict:
    return agreement.load()


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "infra" / "*.tf"))))
def test_every_terraform_file_parses(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        assert hcl2.load(handle)


def test_the_real_infra_and_code_agree(infra: dict) -> None:
    problems = (
        agreement.check_entry_points(infra, MAIN)
        + agreement.check_environment(infra, SETTINGS)
        + agreement.check_secrets(infra, SECRET_STORE)
        + agreement.check_public(infra)
        + agreement.check_accounts(infra)
        + agreement.check_least_privilege(infra)
    )
    assert problems == []


def test_entry_points_are_read_from_main() -> None:
    assert agreement.entry_points(MAIN) == set(agreement.SECRETS_OF)


def test_an_entry_point_added_only_to_main_fails(infra: dict) -> None:
    source = MAIN + "\n\n@functions_framework.http\ndef sweep(request):\n    return None\n"
    assert agreement.check_entry_points(infra, source) == [
        "sweep: an entry point of main.py that Terraform does not deploy",
        "sweep: not deployed by default (variable functions)",
    ]


def test_a_function_added_only_to_terraform_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["sync_all"] = {"public": False, "runs_as": "jobs"}
    assert agreement.check_entry_points(changed, MAIN) == [
        "sync_all: deployed by Terraform but not an entry point of main.py"
    ]


def test_a_wrong_entry_point_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_cloudfunctions2_function"]["function"]["build_config"][0][
        "entry_point"
    ] = "main"
    assert agreement.check_entry_points(changed, MAIN) == [
        "function function: entry_point must be each.key"
    ]


def test_a_variable_terraform_sets_that_settings_do_not_know_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["environment"]["CALENDAR_COLOUR"] = "blue"
    assert agreement.check_environment(changed, SETTINGS) == [
        "CALENDAR_COLOUR: set by Terraform but unknown to the settings"
    ]


def test_a_required_variable_terraform_does_not_set_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    del changed["locals"]["environment"]["BPIUM_FIELDS"]
    assert agreement.check_environment(changed, SETTINGS) == [
        "BPIUM_FIELDS: required by the settings but not set by Terraform"
    ]


def test_a_new_required_setting_fails_until_terraform_sets_it(infra: dict) -> None:
    source = SETTINGS.replace(
        'reader.text("BPIUM_MEETINGS_CATALOG"',
        'reader.text("BPIUM_SPACE", required=True) or reader.text("BPIUM_MEETINGS_CATALOG"',
    )
    assert agreement.check_environment(infra, source) == [
        "BPIUM_SPACE: required by the settings but not set by Terraform"
    ]


def test_settings_variables_are_found() -> None:
    known, required = agreement.settings_variables(SETTINGS)
    assert {"BPIUM_URL", "SEND_UPDATES", "REMINDER_METHOD", "SECRET_MANAGER_ENDPOINT"} <= known
    assert required == {"BPIUM_URL", "BPIUM_MEETINGS_CATALOG", "BPIUM_FIELDS", "GCP_PROJECT"}


def test_a_secret_read_only_by_the_code_fails(infra: dict) -> None:
    source = SECRET_STORE + '\nSLACK_TOKEN = "slack-token"  # noqa: S105\n'
    problems = agreement.check_secrets(infra, source)
    assert "secret slack-token: read by the code but has no container" in problems


def test_a_secret_container_the_code_never_reads_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["secrets"]["old-password"] = "unused"
    assert agreement.check_secrets(changed, SECRET_STORE) == [
        "secret old-password: a container the code never reads"
    ]


def test_a_grant_to_an_account_that_does_not_need_it_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["secret_readers"]["bpium-webhook-secret"].append("jobs")
    assert agreement.check_secrets(changed, SECRET_STORE) == [
        "secret bpium-webhook-secret: account jobs has access it does not need"
    ]


def test_a_missing_grant_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["secret_readers"]["google-oauth-token"] = ["webhooks"]
    assert agreement.check_secrets(changed, SECRET_STORE) == [
        "secret google-oauth-token: account jobs needs access but has none",
        "secret google-oauth-token: account scenarios needs access but has none",
    ]


def test_moving_a_function_to_another_account_needs_its_grants(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["refresh_tokens"]["runs_as"] = "webhooks"
    changed["locals"]["entry_points"]["reconcile"]["runs_as"] = "webhooks"
    assert agreement.check_secrets(changed, SECRET_STORE) == [
        "secret bpium-credentials: account jobs has access it does not need",
        "secret google-oauth-client: account jobs has access it does not need",
        "secret google-oauth-token: account jobs has access it does not need",
    ]


def test_scenarios_and_webhooks_run_as_accounts_of_their_own(infra: dict) -> None:
    runs_as = {n: s["runs_as"] for n, s in infra["locals"]["entry_points"].items()}
    assert {runs_as[n] for n in agreement.SCENARIOS} == {"scenarios"}
    assert {runs_as[n] for n in agreement.WEBHOOKS} == {"webhooks"}
    readable = agreement.readable_secrets(infra)
    assert readable["scenarios"] == {"api-key", "google-oauth-client", "google-oauth-token"}
    assert "api-key" not in readable["webhooks"]


def test_a_scenario_function_on_an_account_that_reads_bpium_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["list_events"]["runs_as"] = "webhooks"
    assert agreement.check_least_privilege(changed) == [
        "list_events: runs as webhooks, which can read bpium-credentials, bpium-webhook-secret"
    ]


def test_granting_a_bpium_secret_to_the_scenarios_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["secret_readers"]["bpium-credentials"].append("scenarios")
    assert agreement.check_least_privilege(changed) == [
        "create_calendar: runs as scenarios, which can read bpium-credentials",
        "list_events: runs as scenarios, which can read bpium-credentials",
    ]


def test_granting_the_api_key_to_the_webhooks_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["secret_readers"]["api-key"].append("webhooks")
    assert agreement.check_least_privilege(changed) == [
        f"{name}: runs as webhooks, which can read api-key" for name in sorted(agreement.WEBHOOKS)
    ]


def test_a_grant_outside_secret_readers_counts_too(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    grants = changed["resource"]["google_secret_manager_secret_iam_member"]
    grants["scenario_webhook_secret"] = {
        "secret_id": '${google_secret_manager_secret.secret["bpium-webhook-secret"].id}',
        "role": "roles/secretmanager.secretAccessor",
        "member": "serviceAccount:${google_service_account.scenarios.email}",
    }
    assert agreement.check_least_privilege(changed) == [
        "create_calendar: runs as scenarios, which can read bpium-webhook-secret",
        "list_events: runs as scenarios, which can read bpium-webhook-secret",
    ]


def test_a_project_wide_secret_role_counts_for_every_secret(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_project_iam_member"]["webhooks_secrets"] = {
        "project": "${var.project_id}",
        "role": "roles/secretmanager.secretAccessor",
        "member": "serviceAccount:${google_service_account.webhooks.email}",
    }
    assert agreement.check_least_privilege(changed) == [
        f"{name}: runs as webhooks, which can read api-key" for name in sorted(agreement.WEBHOOKS)
    ]


def test_a_scenario_that_starts_reading_bpium_fails_even_with_its_grant(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["secret_readers"]["bpium-credentials"].append("scenarios")
    secrets_of = copy.deepcopy(agreement.SECRETS_OF)
    secrets_of["list_events"].add("bpium-credentials")
    assert agreement.check_least_privilege(changed, secrets_of) == [
        "list_events: reads bpium-credentials, which it must not",
        "create_calendar: runs as scenarios, which can read bpium-credentials",
        "list_events: runs as scenarios, which can read bpium-credentials",
    ]


def test_a_function_on_an_undeclared_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["create_calendar"]["runs_as"] = "calendars"
    assert agreement.check_accounts(changed) == [
        "create_calendar: runs as calendars, not a runtime account"
    ]


def test_a_runtime_account_without_its_service_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    del changed["resource"]["google_service_account"]["scenarios"]
    assert agreement.check_accounts(changed) == [
        "runtime account scenarios: no google_service_account scenarios",
        "output service_accounts: scenarios is not a service account of infra/",
    ]


def test_an_account_missing_from_the_outputs_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    del changed["output"]["service_accounts"]["value"]["scenarios"]
    assert agreement.check_accounts(changed) == [
        "service account scenarios: missing from output service_accounts"
    ]


def test_a_secret_granted_to_an_unknown_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["secret_readers"]["api-key"].append("scenario")
    assert agreement.check_accounts(changed) == [
        "secret api-key: reader scenario is not a runtime account"
    ]


def test_a_broader_secret_role_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_secret_manager_secret_iam_member"]["reader"]["role"] = (
        "roles/secretmanager.admin"
    )
    assert agreement.check_secrets(changed, SECRET_STORE) == [
        "secret readers must get roles/secretmanager.secretAccessor and nothing more"
    ]


def test_making_the_token_job_public_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["refresh_tokens"]["public"] = True
    assert agreement.check_public(changed) == ["refresh_tokens: public but should need IAM"]


def test_an_unconditional_public_grant_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_cloud_run_service_iam_member"]["scheduler_invoker"]["member"] = (
        "allUsers"
    )
    assert agreement.check_public(changed) == [
        "invoker grant scheduler_invoker: grants allUsers beyond the public functions"
    ]


def test_a_public_bucket_or_secret_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_storage_bucket_iam_member"]["build_source"]["member"] = "allUsers"
    assert agreement.check_public(changed) == ["only Cloud Run invoker grants may name allUsers"]


def test_every_iam_grant_is_commented_with_why() -> None:
    text = (ROOT / "infra" / "iam.tf").read_text()
    blocks = text.split("\nresource ")
    for block in blocks[1:]:
        if '"google_service_account"' in block.split("{")[0]:
            continue
        preceding = blocks[blocks.index(block) - 1].rstrip().splitlines()[-1]
        assert preceding.lstrip().startswith("#") or "local.secret_reader_grants" in block, block[
            :80
        ]


def test_no_secret_value_is_in_terraform() -> None:
    text = "\n".join(Path(p).read_text() for p in glob.glob(str(ROOT / "infra" / "*.tf")))
    assert "google_secret_manager_secret_version" not in text
    assert "secret_data" not in text


def test_package_is_deterministic_and_holds_only_the_code(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "infra"))
    try:
        import package
    finally:
        sys.path.remove(str(ROOT / "infra"))
    first = package.build(tmp_path / "a.zip")
    second = package.build(tmp_path / "b.zip")
    assert first == second
    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert "main.py" in names
    assert "requirements.txt" in names
    assert "bpium_calendar/web.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "tests" in n]
    assert not [n for n in names if n.startswith("bpium_calendar/commands")]  # workstation only


def test_make_package_prints_the_object_name() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "infra" / "package.py"),
            "--output",
            str(ROOT / ".build" / "test-functions.zip"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "uploaded as functions-" in result.stdout
    (ROOT / ".build" / "test-functions.zip").unlink()


def test_outputs_give_what_bpium_needs(infra: dict) -> None:
    outputs = infra["output"]
    assert {"function_urls", "bpium_webhooks", "bpium_web_requests", "secrets_to_fill"} <= set(
        outputs
    )
    webhooks = json.dumps(outputs["bpium_webhooks"])
    for key in ("catalog", "event", "url", "secret_string", "tracked_fields"):
        assert key in webhooks


@pytest.mark.skipif(shutil.which("terraform") is None, reason="Terraform is not installed here")
def test_terraform_fmt_leaves_infra_unchanged() -> None:
    """What the users' CI runs first; needs no provider, so it runs wherever Terraform is."""
    result = subprocess.run(
        ["terraform", "-chdir=infra", "fmt", "-check", "-recursive", "-diff"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
