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
STACK = (ROOT / "sandbox" / "stack.py").read_text()
BURST = (ROOT / "sandbox" / "burst.py").read_text()


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
        + agreement.check_queue_access(infra)
        + agreement.check_retries(infra)
        + agreement.check_budget(infra)
        + agreement.check_timeouts(infra)
        + agreement.check_urls(infra)
        + agreement.check_firestore(infra)
        + agreement.check_roles(infra, SETTINGS)
    )
    assert problems == []


def test_the_real_infra_keeps_the_queue_the_budget_and_the_timeouts(infra: dict) -> None:
    """The checks that read infra/ alone (no code), apart, so that they report on their own."""
    assert agreement.check_queue_access(infra) == []
    assert agreement.check_retries(infra) == []
    assert agreement.check_budget(infra) == []
    assert agreement.check_timeouts(infra) == []
    assert agreement.check_urls(infra) == []
    assert agreement.check_firestore(infra) == []


def test_the_sandbox_runs_the_deployed_queue_and_the_bench_the_deployed_budget(
    infra: dict,
) -> None:
    assert agreement.check_sandbox(infra, STACK, BURST) == []


def test_entry_points_are_read_from_main() -> None:
    assert agreement.entry_points(MAIN) == set(agreement.SECRETS_OF)


def test_an_entry_point_added_only_to_main_fails(infra: dict) -> None:
    source = MAIN + "\n\n@functions_framework.http\ndef sweep(request):\n    return None\n"
    assert agreement.check_entry_points(infra, source) == [
        "sweep: an entry point of main.py that Terraform does not deploy",
        "sweep: not deployed by default (variable functions)",
        "sweep: refused by the validation of variable functions",
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
    assert {"FUNCTION_TIMEOUT_SECONDS", "TASKS_SERVICE_ACCOUNT", "TASKS_ENDPOINT"} <= known
    assert {
        "CALENDAR_PUSH_URL",
        "CALENDAR_WORKER_URL",
        "FIRESTORE_DATABASE",
        "FROM_GOOGLE",
        "BPIUM_API_USER_ID",
    } <= known
    assert required == {
        "BPIUM_URL",
        "BPIUM_MEETINGS_CATALOG",
        "BPIUM_FIELDS",
        "GCP_PROJECT",
        "TASKS_QUEUE",
        "SYNC_WORKER_URL",
    }


def test_per_function_variables_are_read_from_the_merge(infra: dict) -> None:
    body = infra["resource"]["google_cloudfunctions2_function"]["function"]
    expression = body["service_config"][0]["environment_variables"]
    assert agreement.function_variables(expression) == {
        "FUNCTION_TIMEOUT_SECONDS",
        "BPIUM_RATE_LIMIT",
    }


def test_a_per_function_variable_the_settings_do_not_know_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    config = changed["resource"]["google_cloudfunctions2_function"]["function"]["service_config"][0]
    config["environment_variables"] = config["environment_variables"].replace(
        "FUNCTION_TIMEOUT_SECONDS =", "FUNCTION_TIMEOUT ="
    )
    assert agreement.check_environment(changed, SETTINGS) == [
        "FUNCTION_TIMEOUT: set by Terraform but unknown to the settings"
    ]


def test_an_environment_without_the_shared_settings_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    config = changed["resource"]["google_cloudfunctions2_function"]["function"]["service_config"][0]
    config["environment_variables"] = "${{FUNCTION_TIMEOUT_SECONDS = tostring(each.value.timeout)}}"
    assert agreement.check_environment(changed, SETTINGS) == [
        "BPIUM_FIELDS: required by the settings but not set by Terraform",
        "BPIUM_MEETINGS_CATALOG: required by the settings but not set by Terraform",
        "BPIUM_URL: required by the settings but not set by Terraform",
        "GCP_PROJECT: required by the settings but not set by Terraform",
        "SYNC_WORKER_URL: required by the settings but not set by Terraform",
        "TASKS_QUEUE: required by the settings but not set by Terraform",
        "function function: environment_variables must merge local.environment",
    ]


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
        "secret google-oauth-token: account push needs access but has none",
        "secret google-oauth-token: account scenarios needs access but has none",
        "secret google-oauth-token: account sync needs access but has none",
    ]


def test_moving_a_function_to_another_account_needs_its_grants(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    for job in ("refresh_tokens", "reconcile", "watch_calendars"):
        changed["locals"]["entry_points"][job]["runs_as"] = "webhooks"
    assert agreement.check_secrets(changed, SECRET_STORE) == [
        "secret bpium-credentials: account jobs has access it does not need",
        "secret google-channel-token: account webhooks needs access but has none",
        "secret google-channel-token: account jobs has access it does not need",
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


def test_the_worker_runs_as_its_own_account_that_reads_only_what_it_syncs_with(
    infra: dict,
) -> None:
    assert infra["locals"]["entry_points"]["sync_meeting"]["runs_as"] == "sync"
    assert agreement.readable_secrets(infra)["sync"] == {
        "bpium-credentials",
        "google-oauth-client",
        "google-oauth-token",
    }


def test_granting_the_webhook_secret_to_the_worker_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["secret_readers"]["bpium-webhook-secret"].append("sync")
    assert agreement.check_least_privilege(changed) == [
        "sync_calendar: runs as sync, which can read bpium-webhook-secret",
        "sync_meeting: runs as sync, which can read bpium-webhook-secret",
    ]


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
        f"{name}: runs as webhooks, which can read api-key, google-channel-token"
        for name in sorted(agreement.WEBHOOKS)
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


def test_making_the_worker_public_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["sync_meeting"]["public"] = True
    assert agreement.check_public(changed) == ["sync_meeting: public but should need IAM"]
    assert agreement.check_queue_access(changed) == [
        "invoker grant public_invoker: lets allUsers invoke sync_meeting; only the tasks "
        "account may"
    ]


def test_the_scheduler_invoking_the_worker_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    grant = changed["resource"]["google_cloud_run_service_iam_member"]["scheduler_invoker"]
    grant["for_each"] = "${local.functions}"
    assert agreement.check_queue_access(changed) == [
        "invoker grant scheduler_invoker: lets scheduler invoke sync_calendar, sync_meeting; "
        "only the tasks account may"
    ]


def test_a_single_invoker_grant_on_the_worker_counts_too(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_cloud_run_v2_service_iam_member"] = {
        "jobs_worker": {
            "name": '${google_cloudfunctions2_function.function["sync_meeting"].name}',
            "role": "roles/run.invoker",
            "member": "serviceAccount:${google_service_account.jobs.email}",
        }
    }
    assert agreement.check_queue_access(changed) == [
        "invoker grant jobs_worker: lets jobs invoke sync_meeting; only the tasks account may"
    ]


def test_the_tasks_account_invoking_more_than_the_worker_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    grant = changed["resource"]["google_cloud_run_service_iam_member"]["tasks_invoker"]
    grant["for_each"] = "${local.jobs}"
    assert agreement.check_queue_access(changed) == [
        "invoker grant tasks_invoker: lets the tasks account invoke reconcile, refresh_tokens, "
        "watch_calendars; it may invoke only the workers",
        "sync_calendar: the tasks account cannot invoke it (every Cloud Tasks call would get 403)",
        "sync_meeting: the tasks account cannot invoke it (every Cloud Tasks call would get 403)",
    ]


def test_a_worker_the_tasks_account_cannot_invoke_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    del changed["resource"]["google_cloud_run_service_iam_member"]["tasks_invoker"]
    assert agreement.check_queue_access(changed) == [
        "sync_calendar: the tasks account cannot invoke it (every Cloud Tasks call would get 403)",
        "sync_meeting: the tasks account cannot invoke it (every Cloud Tasks call would get 403)",
    ]


def test_any_other_role_for_the_tasks_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_project_iam_member"]["tasks_invoker"] = {
        "project": "${var.project_id}",
        "role": "roles/run.invoker",
        "member": "serviceAccount:${google_service_account.tasks.email}",
    }
    assert agreement.check_queue_access(changed) == [
        "google_project_iam_member.tasks_invoker: grants the tasks account roles/run.invoker; "
        "it holds only roles/run.invoker on the workers"
    ]


def test_a_function_running_as_the_tasks_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["runtime_accounts"]["tasks"] = "${google_service_account.tasks.email}"
    assert agreement.check_queue_access(changed) == [
        "runtime account tasks: no function may run as the tasks account"
    ]


def test_an_enqueuer_other_than_the_accounts_that_queue_work_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    grants = changed["resource"]["google_cloud_tasks_queue_iam_member"]
    grants["scenarios_enqueuer"] = {
        **grants["webhooks_enqueuer"],
        "member": "serviceAccount:${google_service_account.scenarios.email}",
    }
    assert agreement.check_queue_access(changed) == [
        "queue grant scenarios_enqueuer: gives scenarios roles/cloudtasks.enqueuer; only jobs, "
        "push, webhooks create tasks"
    ]


def test_a_broader_queue_role_for_the_webhooks_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    grant = changed["resource"]["google_cloud_tasks_queue_iam_member"]["webhooks_enqueuer"]
    grant["role"] = "roles/cloudtasks.admin"
    assert agreement.check_queue_access(changed) == [
        "queue grant webhooks_enqueuer: roles/cloudtasks.admin; creating tasks needs only the "
        "enqueuer",
        "webhooks: no roles/cloudtasks.enqueuer on the queue (no task could be created)",
    ]


def test_a_project_wide_enqueuer_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_project_iam_member"]["webhooks_tasks"] = {
        "project": "${var.project_id}",
        "role": "roles/cloudtasks.enqueuer",
        "member": "serviceAccount:${google_service_account.webhooks.email}",
    }
    assert agreement.check_queue_access(changed) == [
        "project grant webhooks_tasks: roles/cloudtasks.enqueuer on the whole project"
    ]


def test_webhooks_without_the_enqueuer_fail(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    del changed["resource"]["google_cloud_tasks_queue_iam_member"]["webhooks_enqueuer"]
    assert agreement.check_queue_access(changed) == [
        "webhooks: no roles/cloudtasks.enqueuer on the queue (no task could be created)"
    ]


def test_act_as_on_another_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    grant = changed["resource"]["google_service_account_iam_member"]["webhooks_act_as_tasks"]
    grant["service_account_id"] = "${google_service_account.sync.name}"
    assert agreement.check_queue_access(changed) == [
        "account grant webhooks_act_as_tasks: gives webhooks roles/iam.serviceAccountUser on "
        "sync; only on tasks",
        "webhooks: no roles/iam.serviceAccountUser on the tasks account (Cloud Tasks refuses a "
        "task with its OIDC token)",
    ]


def test_act_as_for_another_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    grants = changed["resource"]["google_service_account_iam_member"]
    grants["scenarios_act_as_tasks"] = {
        **grants["webhooks_act_as_tasks"],
        "member": "serviceAccount:${google_service_account.scenarios.email}",
    }
    assert agreement.check_queue_access(changed) == [
        "account grant scenarios_act_as_tasks: gives scenarios roles/iam.serviceAccountUser on "
        "tasks; only jobs, push, webhooks"
    ]


def test_a_project_wide_service_account_user_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_project_iam_member"]["webhooks_act_as"] = {
        "project": "${var.project_id}",
        "role": "roles/iam.serviceAccountUser",
        "member": "serviceAccount:${google_service_account.webhooks.email}",
    }
    assert agreement.check_queue_access(changed) == [
        "project grant webhooks_act_as: roles/iam.serviceAccountUser on the whole project"
    ]


def test_webhooks_without_act_as_fail(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    del changed["resource"]["google_service_account_iam_member"]["webhooks_act_as_tasks"]
    assert agreement.check_queue_access(changed) == [
        "webhooks: no roles/iam.serviceAccountUser on the tasks account (Cloud Tasks refuses a "
        "task with its OIDC token)"
    ]


def test_the_queue_retries_for_seven_days(infra: dict) -> None:
    retry = infra["resource"]["google_cloud_tasks_queue"]["sync"]["retry_config"][0]
    assert agreement.retry_span(retry) == 7 * 24 * 3600


def test_a_retry_shorter_than_a_day_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    retry = changed["resource"]["google_cloud_tasks_queue"]["sync"]["retry_config"][0]
    retry.update(max_attempts=5, max_retry_duration="3600s")
    assert agreement.check_retries(changed) == [
        "queue sync: retries end after 1.0 h; at least 24 h needed"
    ]


def test_a_retry_without_literal_limits_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    retry = changed["resource"]["google_cloud_tasks_queue"]["sync"]["retry_config"][0]
    retry["max_backoff"] = "${var.max_backoff}"
    assert agreement.check_retries(changed) == [
        "queue sync: retry_config must set every limit as a literal (not a duration literal: "
        "'${var.max_backoff}')"
    ]


def test_retry_intervals_follow_cloud_tasks_example() -> None:
    """RetryConfig.max_doublings: min 10 s, max 300 s, 3 doublings retry after 10, 20, 40,
    80, 160, 240, 300, 300 s; max_attempts and max_retry_duration must both be reached."""
    retry = {"min_backoff": "10s", "max_backoff": "300s", "max_doublings": 3}
    spans = [
        agreement.retry_span({**retry, "max_attempts": n, "max_retry_duration": "0s"})
        for n in range(1, 10)
    ]
    assert spans == [0, 10, 30, 70, 150, 310, 550, 850, 1150]
    assert agreement.retry_span({**retry, "max_attempts": 3, "max_retry_duration": "600s"}) == 600
    assert agreement.retry_span(
        {**retry, "max_attempts": -1, "max_retry_duration": "600s"}
    ) == float("inf")


def test_the_budget_is_the_workers_the_jobs_and_the_fallback_with_3_spare(infra: dict) -> None:
    specs, budget = infra["locals"]["entry_points"], infra["locals"]["bpium_budget"]
    assert budget == {"worker": 60, "calendar_worker": 12, "jobs": 20, "fallback": 5}
    worker = budget["worker"] * specs["sync_meeting"]["max_instances"]
    calendar_worker = budget["calendar_worker"] * specs["sync_calendar"]["max_instances"]
    jobs = budget["jobs"] * specs["reconcile"]["max_instances"]
    total = worker + calendar_worker + jobs + budget["fallback"]
    assert total == 97 <= agreement.BPIUM_ACCOUNT_LIMIT - agreement.BPIUM_SPARE
    rate = infra["resource"]["google_cloud_tasks_queue"]["sync"]["rate_limits"][0]
    # One queue for both workers: its pace is their two shares together, 2.4 tasks/s.
    assert rate["max_dispatches_per_second"] * agreement.BPIUM_WINDOW_SECONDS == pytest.approx(
        worker + calendar_worker
    )


def test_only_the_workers_and_reconcile_hold_a_share_besides_the_fallback(infra: dict) -> None:
    shares = {
        name: spec["bpium_rate_limit"]
        for name, spec in infra["locals"]["entry_points"].items()
        if spec["bpium_rate_limit"] is not None
    }
    assert shares == {
        **dict.fromkeys(agreement.WEBHOOKS, "${local.bpium_budget.fallback}"),
        "reconcile": "${local.bpium_budget.jobs}",
        "sync_meeting": "${local.bpium_budget.worker}",
        "sync_calendar": "${local.bpium_budget.calendar_worker}",
    }


def test_a_larger_worker_share_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["bpium_budget"]["worker"] = 90
    assert agreement.check_budget(changed) == [
        "Bpium budget: 12 × 1 (sync_calendar) + 5 (fallback) + 20 × 1 (reconcile) + 90 × 1 "
        "(sync_meeting) = 127 requests per 30 s, more than Bpium's 100 less 3 spare"
    ]


def test_a_budget_without_the_spare_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["bpium_budget"]["calendar_worker"] = 15
    assert agreement.check_budget(changed) == [
        "Bpium budget: 15 × 1 (sync_calendar) + 5 (fallback) + 20 × 1 (reconcile) + 60 × 1 "
        "(sync_meeting) = 100 requests per 30 s, more than Bpium's 100 less 3 spare"
    ]


def test_a_second_worker_instance_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["sync_meeting"]["max_instances"] = 2
    assert agreement.check_budget(changed) == [
        "Bpium budget: 12 × 1 (sync_calendar) + 5 (fallback) + 20 × 1 (reconcile) + 60 × 2 "
        "(sync_meeting) = 157 requests per 30 s, more than Bpium's 100 less 3 spare"
    ]


def test_a_second_calendar_worker_instance_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["sync_calendar"]["max_instances"] = 2
    assert agreement.check_budget(changed) == [
        "Bpium budget: 12 × 2 (sync_calendar) + 5 (fallback) + 20 × 1 (reconcile) + 60 × 1 "
        "(sync_meeting) = 109 requests per 30 s, more than Bpium's 100 less 3 spare"
    ]


def test_a_worker_bounded_only_by_max_instances_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["sync_meeting"]["max_instances"] = None
    assert agreement.check_budget(changed) == [
        "sync_meeting: holds a Bpium share per instance but only var.max_instances bounds it",
        "queue sync: 2.4 tasks/s is 72 per 30 s, more than the workers' 12 Bpium requests",
        "queue sync: max_concurrent_dispatches 8 exceeds a worker's 0 threads",
    ]


def test_a_calendar_worker_without_a_share_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["sync_calendar"]["bpium_rate_limit"] = None
    assert agreement.check_budget(changed) == [
        "sync_calendar: calls Bpium but has no bpium_rate_limit (it would take the code's "
        "default, 90 per instance)",
        "queue sync: 2.4 tasks/s is 72 per 30 s, more than the workers' 60 Bpium requests",
    ]


def test_a_bpium_caller_without_a_share_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["reconcile"]["bpium_rate_limit"] = None
    assert agreement.check_budget(changed) == [
        "reconcile: calls Bpium but has no bpium_rate_limit (it would take the code's default, "
        "90 per instance)"
    ]


def test_a_share_of_zero_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["bpium_budget"]["fallback"] = 0
    assert agreement.check_budget(changed) == [
        "Bpium share fallback: 0 is not a limit (0 means none)"
    ]


def test_a_queue_faster_than_the_worker_share_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    limits = changed["resource"]["google_cloud_tasks_queue"]["sync"]["rate_limits"][0]
    limits["max_dispatches_per_second"] = 5
    assert agreement.check_budget(changed) == [
        "queue sync: 5 tasks/s is 150 per 30 s, more than the workers' 72 Bpium requests"
    ]


def test_more_concurrent_dispatches_than_worker_threads_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    limits = changed["resource"]["google_cloud_tasks_queue"]["sync"]["rate_limits"][0]
    limits["max_concurrent_dispatches"] = 16
    assert agreement.check_budget(changed) == [
        "queue sync: max_concurrent_dispatches 16 exceeds a worker's 8 threads"
    ]


def test_one_bpium_rate_limit_for_every_function_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["environment"]["BPIUM_RATE_LIMIT"] = "${tostring(var.bpium_rate_limit)}"
    assert agreement.check_budget(changed) == [
        "BPIUM_RATE_LIMIT: in local.environment, one share for every function"
    ]


def test_max_instances_for_every_function_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    config = changed["resource"]["google_cloudfunctions2_function"]["function"]["service_config"][0]
    config["max_instance_count"] = "${var.max_instances}"
    assert agreement.check_budget(changed) == [
        "function function: max_instance_count must honour each.value.max_instances"
    ]


def test_function_timeout_seconds_of_another_number_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    config = changed["resource"]["google_cloudfunctions2_function"]["function"]["service_config"][0]
    config["environment_variables"] = config["environment_variables"].replace(
        "tostring(each.value.timeout)", '"60"'
    )
    assert agreement.check_timeouts(changed) == [
        "function function: FUNCTION_TIMEOUT_SECONDS must be tostring(each.value.timeout)"
    ]


def test_a_timeout_apart_from_the_entry_points_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    config = changed["resource"]["google_cloudfunctions2_function"]["function"]["service_config"][0]
    config["timeout_seconds"] = 540
    assert agreement.check_timeouts(changed) == [
        "function function: timeout_seconds must be each.value.timeout"
    ]


def test_one_function_timeout_for_every_function_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["environment"]["FUNCTION_TIMEOUT_SECONDS"] = "60"
    assert agreement.check_timeouts(changed) == [
        "FUNCTION_TIMEOUT_SECONDS: in local.environment, one value for every function"
    ]


def test_a_timeout_beyond_what_a_gen2_function_allows_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["sync_meeting"]["timeout"] = 5400
    assert agreement.check_timeouts(changed) == ["sync_meeting: timeout 5400 is not 1-3600 s"]


def test_a_job_longer_than_cloud_scheduler_waits_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["reconcile"]["timeout"] = 3600
    assert agreement.check_timeouts(changed) == [
        "reconcile: timeout 3600 s is outside Cloud Scheduler's 15-1800 s deadline"
    ]


def test_a_fixed_attempt_deadline_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_cloud_scheduler_job"]["job"]["attempt_deadline"] = "180s"
    assert agreement.check_timeouts(changed) == [
        "scheduler job job: attempt_deadline must be its function's timeout"
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
    assert {
        "function_urls",
        "bpium_webhooks",
        "bpium_web_requests",
        "secrets_to_fill",
        "tasks_queue",
    } <= set(outputs)
    assert outputs["tasks_queue"]["value"] == "${google_cloud_tasks_queue.sync.id}"
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


# -- Google → Bpium (issue «two-way») ---------------------------------------------------------


def test_the_two_way_functions_are_deployed_as_the_issue_says(infra: dict) -> None:
    specs = infra["locals"]["entry_points"]
    shape = {
        name: {k: specs[name][k] for k in ("public", "runs_as", "timeout", "max_instances")}
        for name in ("on_calendar_push", "sync_calendar", "watch_calendars")
    }
    assert shape == {
        "on_calendar_push": {
            "public": True,
            "runs_as": "push",
            "timeout": 60,
            "max_instances": None,
        },
        "sync_calendar": {"public": False, "runs_as": "sync", "timeout": 300, "max_instances": 1},
        "watch_calendars": {"public": False, "runs_as": "jobs", "timeout": 300, "max_instances": 1},
    }
    assert specs["on_calendar_push"]["bpium_rate_limit"] is None
    assert specs["watch_calendars"]["bpium_rate_limit"] is None
    assert {"on_calendar_push", "sync_calendar", "watch_calendars"} <= set(
        infra["variable"]["functions"]["default"]
    )


def test_the_push_function_runs_as_its_own_account_that_cannot_reach_bpium(infra: dict) -> None:
    assert infra["locals"]["runtime_accounts"]["push"] == "${google_service_account.push.email}"
    assert agreement.readable_secrets(infra)["push"] == {
        "google-channel-token",
        "google-oauth-client",
        "google-oauth-token",
    }
    assert infra["output"]["service_accounts"]["value"]["push"] == (
        "${google_service_account.push.email}"
    )


def test_only_the_push_function_and_watch_calendars_read_the_channel_token(infra: dict) -> None:
    assert "google-channel-token" in infra["locals"]["secrets"]
    assert sorted(infra["locals"]["secret_readers"]["google-channel-token"]) == ["jobs", "push"]
    readers = {
        name for name, secrets in agreement.SECRETS_OF.items() if "google-channel-token" in secrets
    }
    assert readers == {"on_calendar_push", "watch_calendars"}


def test_granting_bpium_credentials_to_the_push_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["secret_readers"]["bpium-credentials"].append("push")
    assert agreement.check_least_privilege(changed) == [
        "on_calendar_push: runs as push, which can read bpium-credentials"
    ]
    assert agreement.check_secrets(changed, SECRET_STORE) == [
        "secret bpium-credentials: account push has access it does not need"
    ]


def test_the_push_function_on_the_webhooks_account_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["on_calendar_push"]["runs_as"] = "webhooks"
    assert agreement.check_least_privilege(changed) == [
        "on_calendar_push: runs as webhooks, which can read bpium-credentials, bpium-webhook-secret"
    ]


def test_granting_the_channel_token_to_the_workers_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["secret_readers"]["google-channel-token"].append("sync")
    assert agreement.check_least_privilege(changed) == [
        "sync_calendar: runs as sync, which can read google-channel-token",
        "sync_meeting: runs as sync, which can read google-channel-token",
    ]


def test_a_push_function_behind_iam_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["on_calendar_push"]["public"] = False
    assert agreement.check_public(changed) == [
        "on_calendar_push: should be public (its callers send no Google credentials)"
    ]


def test_making_the_calendar_worker_public_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["sync_calendar"]["public"] = True
    assert agreement.check_public(changed) == ["sync_calendar: public but should need IAM"]
    assert agreement.check_queue_access(changed) == [
        "invoker grant public_invoker: lets allUsers invoke sync_calendar; only the tasks "
        "account may"
    ]


def test_the_calendar_worker_left_out_of_the_task_workers_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["task_workers"] = ["sync_meeting"]
    assert agreement.check_queue_access(changed) == [
        "task_workers: must be sync_calendar, sync_meeting",
        "sync_calendar: the tasks account cannot invoke it (every Cloud Tasks call would get 403)",
    ]


@pytest.mark.parametrize("account", ["push", "jobs"])
def test_an_account_that_queues_calendar_syncs_without_the_enqueuer_fails(
    infra: dict, account: str
) -> None:
    changed = copy.deepcopy(infra)
    del changed["resource"]["google_cloud_tasks_queue_iam_member"][f"{account}_enqueuer"]
    assert agreement.check_queue_access(changed) == [
        f"{account}: no roles/cloudtasks.enqueuer on the queue (no task could be created)"
    ]


@pytest.mark.parametrize("account", ["push", "jobs"])
def test_an_account_that_queues_calendar_syncs_without_act_as_fails(
    infra: dict, account: str
) -> None:
    changed = copy.deepcopy(infra)
    del changed["resource"]["google_service_account_iam_member"][f"{account}_act_as_tasks"]
    assert agreement.check_queue_access(changed) == [
        f"{account}: no roles/iam.serviceAccountUser on the tasks account (Cloud Tasks refuses "
        "a task with its OIDC token)"
    ]


def test_a_function_that_queues_work_on_an_account_that_may_not_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["entry_points"]["on_calendar_push"]["runs_as"] = "scenarios"
    assert agreement.check_queue_access(changed) == [
        "on_calendar_push: queues tasks but runs as scenarios, which may not create them",
        "push: may create tasks but runs no function that queues any",
    ]


def test_watch_calendars_runs_hourly_on_the_scheduler(infra: dict) -> None:
    assert infra["locals"]["schedules"]["watch_calendars"] == "${var.watch_schedule}"
    assert infra["variable"]["watch_schedule"]["default"] == "15 * * * *"
    assert infra["resource"]["google_cloud_scheduler_job"]["job"]["for_each"] == "${local.jobs}"


def test_the_built_urls_go_to_their_functions(infra: dict) -> None:
    environment = infra["locals"]["environment"]
    assert {v: environment[v] for v in agreement.URL_VARIABLES} == {
        "SYNC_WORKER_URL": '${local.function_urls["sync_meeting"]}',
        "CALENDAR_WORKER_URL": '${local.function_urls["sync_calendar"]}',
        "CALENDAR_PUSH_URL": '${local.function_urls["on_calendar_push"]}',
    }
    assert agreement.check_urls(infra) == []


def test_a_worker_url_naming_another_function_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["environment"]["CALENDAR_WORKER_URL"] = (
        '${local.function_urls["sync_meeting"]}'
    )
    assert agreement.check_urls(changed) == [
        'CALENDAR_WORKER_URL: must be local.function_urls["sync_calendar"], not '
        "'${local.function_urls[\"sync_meeting\"]}'"
    ]


def test_urls_without_the_check_against_the_platform_fail(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["check"] = {}
    assert agreement.check_urls(changed) == [
        "no check block compares the functions' urls with local.function_urls"
    ]


def test_the_shared_environment_passes_the_two_way_settings(infra: dict) -> None:
    environment = infra["locals"]["environment"]
    assert environment["FIRESTORE_DATABASE"] == "${google_firestore_database.state.name}"
    assert environment["FROM_GOOGLE"] == "${var.from_google}"
    assert environment["BPIUM_API_USER_ID"] == "${var.bpium_api_user_id}"
    assert infra["variable"]["from_google"]["default"] == ""
    assert infra["variable"]["bpium_api_user_id"]["default"] == ""


def test_the_state_database_is_named_kept_and_protected(infra: dict) -> None:
    database = infra["resource"]["google_firestore_database"]["state"]
    assert database["type"] == "FIRESTORE_NATIVE"
    assert database["deletion_policy"] == "ABANDON"
    assert database["delete_protection_state"] == "DELETE_PROTECTION_ENABLED"
    assert database["point_in_time_recovery_enablement"] == "POINT_IN_TIME_RECOVERY_ENABLED"
    assert infra["variable"]["firestore_database"]["default"] == "bpium-gcal"
    assert agreement.check_firestore(infra) == []


def test_exactly_the_accounts_of_the_functions_with_state_use_firestore(infra: dict) -> None:
    grant = infra["resource"]["google_project_iam_member"]["firestore_user"]
    assert grant["role"] == "roles/datastore.user"
    assert agreement._accounts_of(grant, infra) == {"push", "sync", "jobs"}
    assert grant["condition"][0]["expression"] == (
        'resource.name == \\"projects/${var.project_id}/databases/'
        '${google_firestore_database.state.name}\\"'
    )


def test_the_default_database_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["variable"]["firestore_database"]["default"] = "(default)"
    assert agreement.check_firestore(changed) == [
        "firestore_database: default '(default)' must be a named database"
    ]


def test_a_database_that_destroy_deletes_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_firestore_database"]["state"]["deletion_policy"] = "DELETE"
    assert agreement.check_firestore(changed) == [
        "firestore database: deletion_policy must be ABANDON, not 'DELETE'"
    ]


def test_a_firestore_database_apart_from_the_variable_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["environment"]["FIRESTORE_DATABASE"] = "(default)"
    assert agreement.check_firestore(changed) == [
        "FIRESTORE_DATABASE: must be google_firestore_database.state.name"
    ]


def test_firestore_without_its_api_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    apis = changed["resource"]["google_project_service"]["apis"]
    apis["for_each"] = apis["for_each"].replace('"firestore.googleapis.com", ', "")
    assert agreement.check_firestore(changed) == [
        "firestore.googleapis.com: not among the APIs infra/ enables"
    ]


def test_a_firestore_grant_on_every_database_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    del changed["resource"]["google_project_iam_member"]["firestore_user"]["condition"]
    problems = agreement.check_firestore(changed)
    assert problems[0].startswith(
        "firestore grant firestore_user: must be conditioned on the state database only"
    )
    assert problems[1:] == [
        "firestore: account jobs (reconcile, watch_calendars) has no roles/datastore.user on the "
        "state database",
        "firestore: account push (on_calendar_push) has no roles/datastore.user on the state "
        "database",
        "firestore: account sync (sync_calendar) has no roles/datastore.user on the state database",
    ]


def test_firestore_for_an_account_without_state_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["firestore_users"].append("webhooks")
    assert agreement.check_firestore(changed) == [
        "firestore: account webhooks has roles/datastore.user it does not need"
    ]


def test_jobs_without_firestore_fail(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["firestore_users"].remove("jobs")
    assert agreement.check_firestore(changed) == [
        "firestore: account jobs (reconcile, watch_calendars) has no roles/datastore.user on the "
        "state database"
    ]


def test_a_broader_firestore_role_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["resource"]["google_project_iam_member"]["sync_owner"] = {
        "project": "${var.project_id}",
        "role": "roles/datastore.owner",
        "member": "serviceAccount:${google_service_account.sync.email}",
    }
    assert agreement.check_firestore(changed) == [
        "google_project_iam_member.sync_owner: roles/datastore.owner; the state needs only "
        "roles/datastore.user"
    ]


def test_the_variables_accept_the_roles_the_settings_know() -> None:
    infra = agreement.load()
    assert agreement.check_roles(infra, SETTINGS) == []
    names = agreement._validation_names(infra["variable"]["bpium_fields"], 1)
    assert {"responses", "status"} <= set(names)


def test_a_field_role_only_the_settings_know_fails(infra: dict) -> None:
    source = SETTINGS.replace('"responses", "status")', '"responses", "status", "colour")')
    assert source != SETTINGS
    (problem,) = agreement.check_roles(infra, source)
    assert problem.startswith("variable bpium_fields: its validation accepts title, start")
    assert problem.endswith("responses, status, colour")


def test_a_from_google_role_only_the_settings_know_fails(infra: dict) -> None:
    source = SETTINGS.replace(
        'FROM_GOOGLE_ROLES = ("title",', 'FROM_GOOGLE_ROLES = ("guests", "title",'
    )
    assert source != SETTINGS
    assert agreement.check_roles(infra, source) == [
        "variable from_google: its validation accepts title, start, end, agenda, location; the "
        "settings know guests, title, start, end, agenda, location"
    ]


def test_a_bench_budget_apart_from_the_deployed_one_fails(infra: dict) -> None:
    changed = copy.deepcopy(infra)
    changed["locals"]["bpium_budget"]["worker"] = 50
    source = (
        'BUDGET = {"worker": 60, "calendar_worker": 12, "jobs": 20, "fallback": 5}\nTHREADS = 8\n'
    )
    assert agreement.check_sandbox(changed, STACK, source) == [
        "sandbox/burst.py BUDGET: {'worker': 60, 'calendar_worker': 12, 'jobs': 20, "
        "'fallback': 5}, deployed {'worker': 50, 'calendar_worker': 12, 'jobs': 20, "
        "'fallback': 5}"
    ]


def test_outputs_give_the_push_url_and_the_database(infra: dict) -> None:
    outputs = infra["output"]
    assert "on_calendar_push" in outputs["calendar_push_url"]["value"]
    assert outputs["firestore_database"]["value"]["name"] == (
        "${google_firestore_database.state.name}"
    )
    assert "google-channel-token" in outputs["secrets_to_fill"]["description"]
