"""Static checks that infra/ and the code agree. Each check returns the problems it found.

Terraform cannot run here, so python-hcl2 reads the files; the code side is read with `ast`
(never imported), so a check sees exactly what is written on each side.
"""

from __future__ import annotations

import ast
import glob
import os
import re
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
# Read by functions-framework (gunicorn's threads), not by our settings.
RUNTIME_VARIABLES = frozenset({"THREADS"})
# The one hand-kept fact: which secrets each entry point reads.
SECRETS_OF = {
    "on_meeting_created": {
        "bpium-credentials",
        "bpium-webhook-secret",
        "google-oauth-client",
        "google-oauth-token",
    },
    "on_meeting_updated": {
        "bpium-credentials",
        "bpium-webhook-secret",
        "google-oauth-client",
        "google-oauth-token",
    },
    "on_meeting_deleted": {
        "bpium-credentials",
        "bpium-webhook-secret",
        "google-oauth-client",
        "google-oauth-token",
    },
    "list_events": {"api-key", "google-oauth-client", "google-oauth-token"},
    "create_calendar": {"api-key", "google-oauth-client", "google-oauth-token"},
    # Checks the channel token; stops a stranger's channel (channels.stop) with the OAuth token.
    "on_calendar_push": {"google-channel-token", "google-oauth-client", "google-oauth-token"},
    "refresh_tokens": {"google-oauth-client", "google-oauth-token"},
    "reconcile": {"bpium-credentials", "google-oauth-client", "google-oauth-token"},
    # Gives every channel it opens (events.watch) the channel token.
    "watch_calendars": {"google-channel-token", "google-oauth-client", "google-oauth-token"},
    "sync_meeting": {"bpium-credentials", "google-oauth-client", "google-oauth-token"},
    "sync_calendar": {"bpium-credentials", "google-oauth-client", "google-oauth-token"},
}
# Hand-kept too: the entry points that read or write the state in Firestore (DESIGN §9, §10):
# the push function (is the channel ours; its resource id), the calendar worker (sync tokens,
# the mirror of what it wrote to Bpium), watch_calendars (the channels), reconcile (the mirror).
USES_FIRESTORE = frozenset({"on_calendar_push", "sync_calendar", "watch_calendars", "reconcile"})
# The policy behind the grants, kept apart from SECRETS_OF so that a change to what a function
# reads cannot quietly widen it: the scenario functions call only Calendar, so their account
# reads nothing of Bpium; the webhooks are authenticated by their signature, never the API key.
# The workers are called by Cloud Tasks with an OIDC token: neither a webhook's secret string,
# the API key nor the channel token is of any use to them. The push function is public and
# never calls Bpium: nothing of Bpium, nor the API key, is within its reach. Only the push
# function and watch_calendars have any use for the channel token.
BPIUM_SECRETS = frozenset({"bpium-credentials", "bpium-webhook-secret"})
CHANNEL_TOKEN = "google-channel-token"
SCENARIOS = frozenset({"list_events", "create_calendar"})
WEBHOOKS = frozenset({"on_meeting_created", "on_meeting_updated", "on_meeting_deleted"})
PUSH = frozenset({"on_calendar_push"})
WORKERS = frozenset({"sync_meeting", "sync_calendar"})
MUST_NOT_READ = {
    **dict.fromkeys(SCENARIOS, BPIUM_SECRETS | {CHANNEL_TOKEN}),
    **dict.fromkeys(WEBHOOKS, frozenset({"api-key", CHANNEL_TOKEN})),
    **dict.fromkeys(PUSH, BPIUM_SECRETS | {"api-key"}),
    **dict.fromkeys(WORKERS, frozenset({"api-key", "bpium-webhook-secret", CHANNEL_TOKEN})),
}
# Secret Manager roles that reach a secret's metadata or versions but never its payload.
NON_READING_ROLES = frozenset(
    {
        "roles/secretmanager.viewer",
        "roles/secretmanager.secretVersionAdder",
        "roles/secretmanager.secretVersionManager",
    }
)
# Project-wide roles that read every secret's payload.
PROJECT_READING_ROLES = frozenset(
    {"roles/owner", "roles/secretmanager.admin", "roles/secretmanager.secretAccessor"}
)
# Who may do what with the queue (IAM member resources name accounts as
# `google_service_account.NAME`): the tasks account's OIDC token is what the workers accept,
# and only the accounts of the functions that queue work create tasks (enqueuer on the queue,
# actAs on the tasks account): the webhooks (sync_meeting's tasks), push and the jobs
# (watch_calendars: sync_calendar's tasks).
TASKS_ACCOUNT = "tasks"
QUEUES_TASKS = WEBHOOKS | PUSH | {"watch_calendars"}
ENQUEUERS = frozenset({"webhooks", "push", "jobs"})
# Bpium allows the whole account 100 requests per 30 s (docs.bpium.ru), 429 beyond; our
# shares leave 3 of them spare, since our limiters count a call when it is sent and Bpium
# when it arrives (main.tf, bpium_budget).
BPIUM_ACCOUNT_LIMIT = 100
BPIUM_SPARE = 3
BPIUM_WINDOW_SECONDS = 30
# The webhooks' share: they sync inline only when Cloud Tasks did not take a task, so the
# share is budgeted once, not per webhook instance (main.tf, bpium_budget).
FALLBACK_SHARE = "fallback"
# Cloud Tasks must keep retrying a failed sync for at least this long (the issue).
MIN_RETRY_SECONDS = 24 * 3600
# A gen 2 HTTP function runs at most 60 minutes; Cloud Scheduler waits 15 s to 30 min for an
# HTTP target.
MAX_FUNCTION_TIMEOUT = 3600
SCHEDULER_DEADLINE = (15, 1800)
# Called by Bpium or by Google's push notifications, neither of which can send Google
# credentials: the function authenticates every request itself.
INTENDED_PUBLIC = WEBHOOKS | SCENARIOS | PUSH
# The variables whose values carry the other functions' URLs, and whose URL each is.
URL_VARIABLES = {
    "SYNC_WORKER_URL": "sync_meeting",
    "CALENDAR_WORKER_URL": "sync_calendar",
    "CALENDAR_PUSH_URL": "on_calendar_push",
}
# The Firestore grant: read and write documents of the state database, no more.
FIRESTORE_ROLE = "roles/datastore.user"


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of strings and keys; drop them."""
    if isinstance(value, dict):
        return {
            _unquote(k): _unquote(v)
            for k, v in value.items()
            if k not in ("__is_block__", "__comments__")
        }
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load(folder: Path = INFRA) -> dict[str, Any]:
    """Every .tf file, merged: {"resource": {type: {name: body}}, "locals": {...}, ...}."""
    merged: dict[str, Any] = {
        "resource": {},
        "locals": {},
        "variable": {},
        "output": {},
        "check": {},
    }
    for path in sorted(glob.glob(os.path.join(folder, "*.tf"))):
        with open(path, encoding="utf-8") as handle:
            data = _unquote(hcl2.load(handle))
        for block in data.get("resource", []):
            for kind, named in block.items():
                merged["resource"].setdefault(kind, {}).update(named)
        for block in data.get("locals", []):
            merged["locals"].update(block)
        for key in ("variable", "output", "check"):
            for block in data.get(key, []):
                merged[key].update(block)
    return merged


def _validation_names(variable: dict[str, Any], index: int) -> list[str]:
    """The quoted names of the list literal in a variable's index-th validation condition."""
    condition = variable["validation"][index]["condition"]
    found = re.search(r"\[((?:\s*\"[\w-]+\",?)+)\s*\]", condition)
    return re.findall(r'"([\w-]+)"', found.group(1)) if found else []


def entry_points(main_source: str) -> set[str]:
    """Functions of main.py decorated with @functions_framework.http."""
    names = set()
    for node in ast.parse(main_source).body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if ast.unparse(decorator) == "functions_framework.http":
                    names.add(node.name)
    return names


def settings_variables(settings_source: str) -> tuple[set[str], set[str]]:
    """(every variable the settings read, the ones they require)."""
    known, required = set(), {"GCP_PROJECT"}  # required with SECRETS_BACKEND=secret-manager
    for node in ast.walk(ast.parse(settings_source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if ast.unparse(node.func.value) != "reader" or not node.args:
            continue
        first = node.args[0]
        if (
            isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and first.value.isupper()
        ):
            known.add(first.value)
            if any(k.arg == "required" for k in node.keywords):
                required.add(first.value)
    return known, required


def code_secrets(secret_store_source: str) -> set[str]:
    """The secret names the code reads (the module-level constants of secret_store.py)."""
    names = set()
    for node in ast.parse(secret_store_source).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            target = node.targets[0]
            if (
                isinstance(target, ast.Name)
                and target.id.isupper()
                and isinstance(node.value.value, str)
            ) and re.fullmatch(r"[a-z][a-z0-9-]+", node.value.value):
                names.add(node.value.value)
    return names


def _account_of(member: str) -> str | None:
    """`serviceAccount:${google_service_account.NAME.email}` → NAME."""
    found = re.search(r"google_service_account\.(\w+)\.email", member or "")
    return found.group(1) if found else None


def _secret_of(secret_id: str) -> str | None:
    """`${google_secret_manager_secret.secret["NAME"].id}` → NAME."""
    found = re.search(r'google_secret_manager_secret\.secret\[\\?"([^"\\]+)\\?"\]', secret_id or "")
    return found.group(1) if found else None


def readable_secrets(infra: dict[str, Any]) -> dict[str, set[str]]:
    """Account → the secrets it can read: by secret_readers, by a grant of its own on one
    secret, or by a project-wide role on all of them."""
    secrets = set(infra["locals"]["secrets"])
    readable: dict[str, set[str]] = {a: set() for a in infra["locals"]["runtime_accounts"]}
    for secret, readers in infra["locals"]["secret_readers"].items():
        for reader in readers:
            readable.setdefault(reader, set()).add(secret)
    for grant in infra["resource"].get("google_secret_manager_secret_iam_member", {}).values():
        account = _account_of(grant.get("member", ""))
        if account and grant.get("role") not in NON_READING_ROLES:
            secret = _secret_of(grant.get("secret_id", ""))
            readable.setdefault(account, set()).update({secret} if secret else secrets)
    for grant in infra["resource"].get("google_project_iam_member", {}).values():
        account = _account_of(grant.get("member", ""))
        if account and grant.get("role") in PROJECT_READING_ROLES:
            readable.setdefault(account, set()).update(secrets)
    return readable


def check_entry_points(infra: dict[str, Any], main_source: str) -> list[str]:
    problems = []
    code = entry_points(main_source)
    deployed = set(infra["locals"]["entry_points"])
    problems += [
        f"{n}: an entry point of main.py that Terraform does not deploy"
        for n in sorted(code - deployed)
    ]
    problems += [
        f"{n}: deployed by Terraform but not an entry point of main.py"
        for n in sorted(deployed - code)
    ]
    default = set(infra["variable"]["functions"]["default"])
    problems += [
        f"{n}: not deployed by default (variable functions)" for n in sorted(code - default)
    ]
    problems += [
        f"{n}: in variable functions but not an entry point" for n in sorted(default - code)
    ]
    allowed = set(_validation_names(infra["variable"]["functions"], 0))
    problems += [
        f"{n}: refused by the validation of variable functions" for n in sorted(code - allowed)
    ]
    problems += [
        f"{n}: allowed by the validation of variable functions but not an entry point"
        for n in sorted(allowed - code)
    ]
    for name, body in infra["resource"]["google_cloudfunctions2_function"].items():
        if body.get("for_each") != "${local.functions}":
            problems.append(f"function {name}: must be made for_each = local.functions")
        if body["build_config"][0].get("entry_point") != "${each.key}":
            problems.append(f"function {name}: entry_point must be each.key")
    return problems


def function_variables(expression: str) -> set[str]:
    """The variables a function's `environment_variables` sets besides local.environment:
    the keys of the object literals merged in (`NAME = value`)."""
    return set(re.findall(r"\b([A-Z][A-Z0-9_]*) =", expression))


def check_environment(infra: dict[str, Any], settings_source: str) -> list[str]:
    """Every variable a function gets is known to the settings, and every function gets every
    required one: local.environment (which it must merge) and its own."""
    known, required = settings_variables(settings_source)
    shared = set(infra["locals"]["environment"])
    every: set[str] = set(shared)
    unset: set[str] = set()
    malformed = []
    for name, body in infra["resource"]["google_cloudfunctions2_function"].items():
        expression = body["service_config"][0].get("environment_variables", "")
        env = function_variables(expression)
        if expression.startswith("${merge(local.environment,"):
            env |= shared
        else:
            malformed.append(f"function {name}: environment_variables must merge local.environment")
        every |= env
        unset |= required - env
    problems = [
        f"{n}: set by Terraform but unknown to the settings"
        for n in sorted(every - known - RUNTIME_VARIABLES)
    ]
    problems += [f"{n}: required by the settings but not set by Terraform" for n in sorted(unset)]
    return problems + malformed


def check_secrets(infra: dict[str, Any], secret_store_source: str) -> list[str]:
    problems = []
    code = code_secrets(secret_store_source)
    containers = set(infra["locals"]["secrets"])
    problems += [
        f"secret {n}: read by the code but has no container" for n in sorted(code - containers)
    ]
    problems += [f"secret {n}: a container the code never reads" for n in sorted(containers - code)]
    runs_as = {name: spec["runs_as"] for name, spec in infra["locals"]["entry_points"].items()}
    needed: dict[str, set[str]] = {}
    for function, secrets in SECRETS_OF.items():
        for secret in secrets:
            if function in runs_as:
                needed.setdefault(secret, set()).add(runs_as[function])
    granted = {
        secret: set(readers) for secret, readers in infra["locals"]["secret_readers"].items()
    }
    for secret in sorted(code | set(granted)):
        want, have = needed.get(secret, set()), granted.get(secret, set())
        problems += [
            f"secret {secret}: account {a} needs access but has none" for a in sorted(want - have)
        ]
        problems += [
            f"secret {secret}: account {a} has access it does not need" for a in sorted(have - want)
        ]
    reader = infra["resource"]["google_secret_manager_secret_iam_member"]["reader"]
    if reader.get("role") != "roles/secretmanager.secretAccessor":
        problems.append(
            "secret readers must get roles/secretmanager.secretAccessor and nothing more"
        )
    for name, grant in infra["resource"]["google_secret_manager_secret_iam_member"].items():
        if name != "reader" and "google-oauth-token" not in grant.get("secret_id", ""):
            problems.append(
                f"secret grant {name}: only the token secret gets more than read access"
            )
    return problems


def check_public(infra: dict[str, Any]) -> list[str]:
    problems = []
    specs = infra["locals"]["entry_points"]
    public = {name for name, spec in specs.items() if spec.get("public") is True}
    problems += [f"{n}: public but should need IAM" for n in sorted(public - INTENDED_PUBLIC)]
    problems += [
        f"{n}: should be public (its callers send no Google credentials)"
        for n in sorted(INTENDED_PUBLIC - public)
    ]
    for name, grant in infra["resource"]["google_cloud_run_service_iam_member"].items():
        member, loop = grant.get("member"), grant.get("for_each", "")
        if member in ("allUsers", "allAuthenticatedUsers") and "if spec.public" not in loop:
            problems.append(f"invoker grant {name}: grants {member} beyond the public functions")
    all_members = [
        b.get("member")
        for t in (
            "google_project_iam_member",
            "google_storage_bucket_iam_member",
            "google_secret_manager_secret_iam_member",
            "google_cloud_tasks_queue_iam_member",
            "google_service_account_iam_member",
        )
        for b in infra["resource"].get(t, {}).values()
    ]
    if any(m in ("allUsers", "allAuthenticatedUsers") for m in all_members):
        problems.append("only Cloud Run invoker grants may name allUsers")
    return problems


def check_accounts(infra: dict[str, Any]) -> list[str]:
    """Every function runs as one of the runtime accounts, each a service account of its own
    that the outputs list; secrets are granted to those accounts only."""
    problems = []
    declared = set(infra["resource"].get("google_service_account", {}))
    runtime = infra["locals"]["runtime_accounts"]
    for key, email in sorted(runtime.items()):
        if email != f"${{google_service_account.{key}.email}}":
            problems.append(f"runtime account {key}: must be google_service_account.{key}.email")
        if key not in declared:
            problems.append(f"runtime account {key}: no google_service_account {key}")
    for name, spec in sorted(infra["locals"]["entry_points"].items()):
        if spec.get("runs_as") not in runtime:
            problems.append(f"{name}: runs as {spec.get('runs_as')}, not a runtime account")
    for secret, readers in sorted(infra["locals"]["secret_readers"].items()):
        problems += [
            f"secret {secret}: reader {r} is not a runtime account"
            for r in readers
            if r not in runtime
        ]
    listed = infra["output"]["service_accounts"]["value"]
    problems += [
        f"service account {n}: missing from output service_accounts"
        for n in sorted(declared - set(listed))
    ]
    problems += [
        f"output service_accounts: {n} is not a service account of infra/"
        for n in sorted(set(listed) - declared)
    ]
    return problems


def check_least_privilege(
    infra: dict[str, Any], secrets_of: dict[str, set[str]] = SECRETS_OF
) -> list[str]:
    """No function reads, or runs as an account that can read, a secret MUST_NOT_READ keeps
    from it."""
    problems = []
    for name, secrets in sorted(secrets_of.items()):
        kept = MUST_NOT_READ.get(name, frozenset()) & secrets
        if kept:
            problems.append(f"{name}: reads {', '.join(sorted(kept))}, which it must not")
    readable = readable_secrets(infra)
    for name, spec in sorted(infra["locals"]["entry_points"].items()):
        account = spec.get("runs_as", "")
        forbidden = MUST_NOT_READ.get(name, frozenset()) & readable.get(account, set())
        if forbidden:
            problems.append(
                f"{name}: runs as {account}, which can read {', '.join(sorted(forbidden))}"
            )
    return problems


INVOKER_GRANTS = ("google_cloud_run_service_iam_member", "google_cloud_run_v2_service_iam_member")


def _grants(infra: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every IAM member resource: (type, name, body)."""
    return [
        (kind, name, body)
        for kind, named in infra["resource"].items()
        if kind.endswith("_iam_member")
        for name, body in named.items()
    ]


def _invoked(grant: dict[str, Any], infra: dict[str, Any]) -> set[str]:
    """The entry points an invoker grant covers: by its for_each, or the one function its
    service names; anything else is read as all of them."""
    specs = infra["locals"]["entry_points"]
    loop = grant.get("for_each")
    if loop is None:
        service = grant.get("service") or grant.get("name", "")  # v1 or v2 Cloud Run IAM
        named = re.search(r'function\[\\?"(\w+)\\?"\]', service)
        return {named.group(1)} if named else set(specs)
    if "if spec.public" in loop:
        return {n for n, spec in specs.items() if spec.get("public") is True}
    by_local = {
        "${local.jobs}": set(infra["locals"].get("schedules", {})),
        "${local.workers}": set(infra["locals"].get("task_workers", [])),
    }
    return by_local.get(loop, set(specs))


def _who(member: str) -> str:
    return _account_of(member) or member


def _invoker_problems(infra: dict[str, Any]) -> list[str]:
    """The workers' one invoker is the tasks account, which invokes and holds nothing else."""
    problems, invokable = [], set()
    for kind, name, grant in _grants(infra):
        who, role = _who(grant.get("member", "")), grant.get("role", "")
        if kind not in INVOKER_GRANTS or role != "roles/run.invoker":
            if who == TASKS_ACCOUNT:
                problems.append(
                    f"{kind}.{name}: grants the tasks account {role}; it holds only "
                    "roles/run.invoker on the workers"
                )
            continue
        covered = _invoked(grant, infra)
        if who == TASKS_ACCOUNT:
            invokable |= covered & WORKERS
            if covered - WORKERS:
                problems.append(
                    f"invoker grant {name}: lets the tasks account invoke "
                    f"{', '.join(sorted(covered - WORKERS))}; it may invoke only the workers"
                )
        elif covered & WORKERS:
            problems.append(
                f"invoker grant {name}: lets {who} invoke "
                f"{', '.join(sorted(covered & WORKERS))}; only the tasks account may"
            )
    return problems + [
        f"{w}: the tasks account cannot invoke it (every Cloud Tasks call would get 403)"
        for w in sorted(WORKERS - invokable)
    ]


def _enqueuers_text() -> str:
    return ", ".join(sorted(ENQUEUERS))


def _enqueuer_problems(infra: dict[str, Any]) -> list[str]:
    """Only the ENQUEUERS hold a role on the queue, the enqueuer, and nobody one on the
    project."""
    problems, enqueuers = [], set()
    for name, grant in infra["resource"].get("google_cloud_tasks_queue_iam_member", {}).items():
        who, role = _who(grant.get("member", "")), grant.get("role")
        if "google_cloud_tasks_queue." not in grant.get("name", ""):
            problems.append(f"queue grant {name}: must name the queue of infra/")
        if who not in ENQUEUERS:
            problems.append(
                f"queue grant {name}: gives {who} {role}; only {_enqueuers_text()} create tasks"
            )
        elif role != "roles/cloudtasks.enqueuer":
            problems.append(f"queue grant {name}: {role}; creating tasks needs only the enqueuer")
        else:
            enqueuers.add(who)
    problems += [
        f"{a}: no roles/cloudtasks.enqueuer on the queue (no task could be created)"
        for a in sorted(ENQUEUERS - enqueuers)
    ]
    problems += [
        f"project grant {name}: {grant['role']} on the whole project"
        for name, grant in infra["resource"].get("google_project_iam_member", {}).items()
        if grant.get("role", "").startswith("roles/cloudtasks.")
        or grant.get("role")
        in ("roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator")
    ]
    return problems


def _act_as_problems(infra: dict[str, Any]) -> list[str]:
    """Only the ENQUEUERS may act as an account, and only as the tasks account."""
    problems, acting = [], set()
    for name, grant in infra["resource"].get("google_service_account_iam_member", {}).items():
        who, role = _who(grant.get("member", "")), grant.get("role")
        target = re.search(r"google_service_account\.(\w+)\.", grant.get("service_account_id", ""))
        on = target.group(1) if target else grant.get("service_account_id")
        if on != TASKS_ACCOUNT:
            problems.append(f"account grant {name}: gives {who} {role} on {on}; only on tasks")
        elif who not in ENQUEUERS:
            problems.append(
                f"account grant {name}: gives {who} {role} on tasks; only {_enqueuers_text()}"
            )
        elif role != "roles/iam.serviceAccountUser":
            problems.append(f"account grant {name}: {role}; actAs needs only serviceAccountUser")
        else:
            acting.add(who)
    return problems + [
        f"{a}: no roles/iam.serviceAccountUser on the tasks account (Cloud Tasks refuses a "
        "task with its OIDC token)"
        for a in sorted(ENQUEUERS - acting)
    ]


def _queuer_problems(infra: dict[str, Any]) -> list[str]:
    """Every function that queues work runs as an account that may create tasks, and every
    such account runs one of them."""
    specs = infra["locals"]["entry_points"]
    problems = [
        f"{n}: queues tasks but runs as {specs[n].get('runs_as')}, which may not create them"
        for n in sorted(QUEUES_TASKS & set(specs))
        if specs[n].get("runs_as") not in ENQUEUERS
    ]
    used = {specs[n].get("runs_as") for n in QUEUES_TASKS & set(specs)}
    return problems + [
        f"{a}: may create tasks but runs no function that queues any"
        for a in sorted(ENQUEUERS - used)
    ]


def check_queue_access(infra: dict[str, Any]) -> list[str]:
    """Cloud Tasks reaches the workers, and only the functions that queue work reach Cloud
    Tasks: the workers' one invoker is the tasks account, which invokes nothing else and
    holds nothing else; the ENQUEUERS alone may create tasks (enqueuer on the queue) and
    carry the tasks account's token (actAs on that account only), and every function that
    queues work runs as one of them."""
    problems = []
    if set(infra["locals"].get("task_workers", [])) != WORKERS:
        problems.append(f"task_workers: must be {', '.join(sorted(WORKERS))}")
    if TASKS_ACCOUNT in infra["locals"]["runtime_accounts"]:
        problems.append(
            f"runtime account {TASKS_ACCOUNT}: no function may run as the tasks account"
        )
    return (
        problems
        + _invoker_problems(infra)
        + _enqueuer_problems(infra)
        + _act_as_problems(infra)
        + _queuer_problems(infra)
    )


def _seconds(duration: Any) -> float:
    """A Terraform duration literal such as "604800s"."""
    if not (isinstance(duration, str) and re.fullmatch(r"\d+(\.\d+)?s", duration)):
        raise ValueError(f"not a duration literal: {duration!r}")
    return float(duration[:-1])


def retry_span(retry: dict[str, Any]) -> float:
    """Seconds from a task's first attempt to its last, by Cloud Tasks' RetryConfig: the
    interval starts at min_backoff, doubles max_doublings times, then grows linearly by
    min_backoff × 2^max_doublings, capped at max_backoff; retries stop only once both
    max_attempts (-1: unlimited) and max_retry_duration (0: none) are reached."""
    attempts = retry["max_attempts"]
    if attempts == -1:
        return float("inf")
    low, high = _seconds(retry["min_backoff"]), _seconds(retry["max_backoff"])
    doublings = retry["max_doublings"]
    top = low * 2**doublings
    by_attempts = sum(
        min(high, low * 2**k if k <= doublings else top + (k - doublings) * top)
        for k in range(attempts - 1)
    )
    return max(by_attempts, _seconds(retry["max_retry_duration"]))


def check_retries(infra: dict[str, Any]) -> list[str]:
    """Every queue keeps retrying a failed task for at least a day."""
    problems = []
    for name, queue in infra["resource"].get("google_cloud_tasks_queue", {}).items():
        retry = (queue.get("retry_config") or [{}])[0]
        try:
            span = retry_span(retry)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"queue {name}: retry_config must set every limit as a literal ({exc})")
            continue
        if span < MIN_RETRY_SECONDS:
            problems.append(
                f"queue {name}: retries end after {span / 3600:.1f} h; at least "
                f"{MIN_RETRY_SECONDS // 3600} h needed"
            )
    return problems


def _number(value: Any, infra: dict[str, Any]) -> Any:
    """A literal, or a `${local.NAME}` / `${local.NAME.KEY}` reference resolved from locals."""
    found = (
        re.fullmatch(r"\$\{local\.(\w+)(?:\.(\w+))?\}", value) if isinstance(value, str) else None
    )
    if not found:
        return value
    resolved = infra["locals"].get(found.group(1))
    return (
        resolved.get(found.group(2)) if found.group(2) and isinstance(resolved, dict) else resolved
    )


def _shares(infra: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Entry point → (its share's name, the share's BPIUM_RATE_LIMIT), for those with one."""
    shares = {}
    for name, spec in infra["locals"]["entry_points"].items():
        raw = spec.get("bpium_rate_limit")
        if raw is None:
            continue
        share = (
            re.fullmatch(r"\$\{local\.bpium_budget\.(\w+)\}", raw) if isinstance(raw, str) else None
        )
        shares[name] = (share.group(1) if share else name, _number(raw, infra))
    return shares


def _instances(infra: dict[str, Any], name: str) -> int | None:
    bound = infra["locals"]["entry_points"][name].get("max_instances")
    return bound if isinstance(bound, int) else None


def _budget_problems(infra: dict[str, Any], secrets_of: dict[str, set[str]]) -> list[str]:
    """Every function that can call Bpium has a share, bounded in instances, and the shares
    sum to at most Bpium's limit."""
    specs, shares = infra["locals"]["entry_points"], _shares(infra)
    problems = [
        f"{name}: calls Bpium but has no bpium_rate_limit (it would take the code's default, "
        "90 per instance)"
        for name in sorted(specs)
        if name not in shares and "bpium-credentials" in secrets_of.get(name, set())
    ]
    total, terms = 0, []
    for share in sorted({s for s, _ in shares.values()}):
        holders = sorted(n for n, (s, _) in shares.items() if s == share)
        limit = shares[holders[0]][1]
        if not isinstance(limit, int) or limit < 1:
            problems.append(f"Bpium share {share}: {limit!r} is not a limit (0 means none)")
        elif share == FALLBACK_SHARE:
            total += limit
            terms.append(f"{limit} ({share})")
        else:
            problems += [
                f"{n}: holds a Bpium share per instance but only var.max_instances bounds it"
                for n in holders
                if _instances(infra, n) is None
            ]
            count = sum(_instances(infra, n) or 0 for n in holders)
            total += limit * count
            terms.append(f"{limit} × {count} ({', '.join(holders)})")
    if total > BPIUM_ACCOUNT_LIMIT - BPIUM_SPARE:
        problems.append(
            f"Bpium budget: {' + '.join(terms)} = {total} requests per "
            f"{BPIUM_WINDOW_SECONDS} s, more than Bpium's {BPIUM_ACCOUNT_LIMIT} less "
            f"{BPIUM_SPARE} spare"
        )
    return problems


def _pace_problems(infra: dict[str, Any]) -> list[str]:
    """The queue, which carries both workers' tasks, sends no more tasks per 30 s than the
    workers' shares together, and no more at once than the threads of the smallest worker:
    any burst may be all for one of them."""
    shares, problems = _shares(infra), []
    workers = sum(
        shares[n][1] * (_instances(infra, n) or 0)
        for n in WORKERS
        if n in shares and isinstance(shares[n][1], int)
    )
    threads = infra["locals"].get("threads", 0)
    capacity = min(threads * (_instances(infra, n) or 0) for n in WORKERS)
    for name, queue in infra["resource"].get("google_cloud_tasks_queue", {}).items():
        limits = (queue.get("rate_limits") or [{}])[0]
        rate = _number(limits.get("max_dispatches_per_second"), infra)
        if not isinstance(rate, (int, float)):
            problems.append(f"queue {name}: max_dispatches_per_second must be a number")
        elif rate * BPIUM_WINDOW_SECONDS > workers:
            problems.append(
                f"queue {name}: {rate:g} tasks/s is {rate * BPIUM_WINDOW_SECONDS:g} per "
                f"{BPIUM_WINDOW_SECONDS} s, more than the workers' {workers} Bpium requests"
            )
        concurrent = _number(limits.get("max_concurrent_dispatches"), infra)
        if not isinstance(concurrent, int) or concurrent > capacity:
            problems.append(
                f"queue {name}: max_concurrent_dispatches {concurrent!r} exceeds a worker's "
                f"{capacity} threads"
            )
    return problems


def check_budget(infra: dict[str, Any], secrets_of: dict[str, set[str]] = SECRETS_OF) -> list[str]:
    """Bpium's one budget: every function that can call Bpium has a share of it, bounded in
    instances; the shares sum to at most Bpium's 100 per 30 s less the spare; the queue never
    sends the workers more tasks per 30 s than their shares; each function gets its own share
    and bound."""
    problems = _budget_problems(infra, secrets_of) + _pace_problems(infra)
    for name, body in infra["resource"]["google_cloudfunctions2_function"].items():
        config = body["service_config"][0]
        if config.get("max_instance_count") != (
            "${coalesce(each.value.max_instances, var.max_instances)}"
        ):
            problems.append(
                f"function {name}: max_instance_count must honour each.value.max_instances"
            )
        if "BPIUM_RATE_LIMIT = tostring(each.value.bpium_rate_limit)" not in config.get(
            "environment_variables", ""
        ):
            problems.append(
                f"function {name}: BPIUM_RATE_LIMIT must be each.value.bpium_rate_limit"
            )
    if "BPIUM_RATE_LIMIT" in infra["locals"]["environment"]:
        problems.append("BPIUM_RATE_LIMIT: in local.environment, one share for every function")
    return problems


def check_timeouts(infra: dict[str, Any]) -> list[str]:
    """FUNCTION_TIMEOUT_SECONDS is each function's own timeout, within what a gen 2 HTTP
    function allows; a job's attempt deadline is its function's timeout, within what Cloud
    Scheduler allows."""
    problems = []
    specs = infra["locals"]["entry_points"]
    for name, spec in sorted(specs.items()):
        timeout = spec.get("timeout")
        if not isinstance(timeout, int) or not 1 <= timeout <= MAX_FUNCTION_TIMEOUT:
            problems.append(f"{name}: timeout {timeout!r} is not 1-{MAX_FUNCTION_TIMEOUT} s")
    for name, body in infra["resource"]["google_cloudfunctions2_function"].items():
        config = body["service_config"][0]
        if config.get("timeout_seconds") != "${each.value.timeout}":
            problems.append(f"function {name}: timeout_seconds must be each.value.timeout")
        if "FUNCTION_TIMEOUT_SECONDS = tostring(each.value.timeout)" not in config.get(
            "environment_variables", ""
        ):
            problems.append(
                f"function {name}: FUNCTION_TIMEOUT_SECONDS must be tostring(each.value.timeout)"
            )
    if "FUNCTION_TIMEOUT_SECONDS" in infra["locals"]["environment"]:
        problems.append(
            "FUNCTION_TIMEOUT_SECONDS: in local.environment, one value for every function"
        )
    low, high = SCHEDULER_DEADLINE
    for name, job in infra["resource"].get("google_cloud_scheduler_job", {}).items():
        if job.get("attempt_deadline") != "${local.functions[each.key].timeout}s":
            problems.append(
                f"scheduler job {name}: attempt_deadline must be its function's timeout"
            )
    for name in sorted(infra["locals"].get("schedules", {})):
        timeout = specs.get(name, {}).get("timeout")
        if isinstance(timeout, int) and not low <= timeout <= high:
            problems.append(
                f"{name}: timeout {timeout} s is outside Cloud Scheduler's {low}-{high} s deadline"
            )
    return problems


def check_urls(infra: dict[str, Any]) -> list[str]:
    """The variables that carry URLs name the right functions' built URLs; those are built
    as the platform names a gen 2 function, and a check block compares them after apply."""
    problems = []
    environment = infra["locals"]["environment"]
    for variable, function in sorted(URL_VARIABLES.items()):
        want = f'${{local.function_urls["{function}"]}}'
        if environment.get(variable) != want:
            problems.append(
                f'{variable}: must be local.function_urls["{function}"], '
                f"not {environment.get(variable)!r}"
            )
    built = infra["locals"].get("function_urls", "")
    pattern = (
        "for name in keys(local.entry_points) : name => "
        '"https://${var.region}-${var.project_id}.cloudfunctions.net/'
        '${replace(name, "_", "-")}"'
    )
    if pattern not in built:
        problems.append(
            "function_urls: must be https://{region}-{project}.cloudfunctions.net/{name}"
        )
    function = infra["resource"]["google_cloudfunctions2_function"]["function"]
    if function.get("name") != '${replace(each.key, "_", "-")}':
        problems.append("function function: its name must be the entry point with - for _")
    compared = [
        a["condition"]
        for body in infra["check"].values()
        for a in body.get("assert", [])
        if "google_cloudfunctions2_function.function" in a.get("condition", "")
        and "local.function_urls" in a.get("condition", "")
    ]
    if not compared:
        problems.append("no check block compares the functions' urls with local.function_urls")
    return problems


def _accounts_of(grant: dict[str, Any], infra: dict[str, Any]) -> set[str]:
    """The accounts an IAM member grant names: one, or those of the local list its for_each
    goes over (`member = ...local.runtime_accounts[each.key]`)."""
    member = grant.get("member", "")
    loop = re.fullmatch(r"\$\{(?:toset\()?local\.(\w+)\)?\}", grant.get("for_each", "") or "")
    if "local.runtime_accounts[each.key]" in member and loop:
        return set(infra["locals"].get(loop.group(1), []))
    return {_who(member)}


def _database_problems(infra: dict[str, Any]) -> list[str]:
    """One named Firestore database, which Terraform never deletes and nobody by accident."""
    databases = infra["resource"].get("google_firestore_database", {})
    if set(databases) != {"state"}:
        return [f"firestore: one google_firestore_database, state; found {sorted(databases)}"]
    body, problems = databases["state"], []
    settings = {
        "name": "${var.firestore_database}",
        "type": "FIRESTORE_NATIVE",
        "deletion_policy": "ABANDON",
        "delete_protection_state": "DELETE_PROTECTION_ENABLED",
        "point_in_time_recovery_enablement": "POINT_IN_TIME_RECOVERY_ENABLED",
    }
    problems += [
        f"firestore database: {key} must be {want}, not {body.get(key)!r}"
        for key, want in settings.items()
        if body.get(key) != want
    ]
    if body.get("concurrency_mode") not in ("OPTIMISTIC", "PESSIMISTIC"):
        problems.append(
            "firestore database: concurrency_mode must be set (the code uses transactions)"
        )
    variable = infra["variable"]["firestore_database"]
    pattern = re.search(r'regex\("([^"]+)"', variable["validation"][0]["condition"])
    default = variable.get("default")
    if default == "(default)" or not pattern or not re.fullmatch(pattern.group(1), default or ""):
        problems.append(f"firestore_database: default {default!r} must be a named database")
    elif re.fullmatch(pattern.group(1), "(default)"):
        problems.append("firestore_database: its validation must refuse (default)")
    if infra["locals"]["environment"].get("FIRESTORE_DATABASE") != (
        "${google_firestore_database.state.name}"
    ):
        problems.append("FIRESTORE_DATABASE: must be google_firestore_database.state.name")
    apis = infra["resource"]["google_project_service"]["apis"]["for_each"]
    if '"firestore.googleapis.com"' not in apis:
        problems.append("firestore.googleapis.com: not among the APIs infra/ enables")
    return problems


def check_firestore(infra: dict[str, Any], uses: frozenset[str] = USES_FIRESTORE) -> list[str]:
    """The state database is named, kept and wired into the environment; exactly the accounts
    of the functions that use it hold roles/datastore.user, conditioned on that database, and
    no Firestore role is granted any other way."""
    problems = _database_problems(infra)
    specs = infra["locals"]["entry_points"]
    database = (
        'resource.name == \\"projects/${var.project_id}/databases/'
        '${google_firestore_database.state.name}\\"'
    )
    granted: set[str] = set()
    for kind, name, grant in _grants(infra):
        if not grant.get("role", "").startswith("roles/datastore."):
            continue
        if kind != "google_project_iam_member" or grant["role"] != FIRESTORE_ROLE:
            problems.append(
                f"{kind}.{name}: {grant['role']}; the state needs only {FIRESTORE_ROLE}"
            )
            continue
        condition = (grant.get("condition") or [{}])[0].get("expression", "")
        if condition != database:
            problems.append(
                f"firestore grant {name}: must be conditioned on the state database only "
                f"({database.replace(chr(92), '')})"
            )
            continue
        granted |= _accounts_of(grant, infra)
    users: dict[str, list[str]] = {}
    for name in sorted(uses & set(specs)):
        users.setdefault(specs[name].get("runs_as"), []).append(name)
    problems += [
        f"firestore: account {a} ({', '.join(users[a])}) has no {FIRESTORE_ROLE} on the state "
        "database"
        for a in sorted(set(users) - granted)
    ]
    problems += [
        f"firestore: account {a} has {FIRESTORE_ROLE} it does not need"
        for a in sorted(granted - set(users))
    ]
    return problems


def module_constants(source: str) -> dict[str, Any]:
    """The module-level `NAME = <literal>` assignments of a source file, literals evaluated
    (numbers may be products, as in `7 * 86400.0`); the module is never imported."""

    def value(node: ast.expr) -> Any:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return value(node.left) * value(node.right)
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values, strict=True) if k}
        return ast.literal_eval(node)

    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = value(node.value)
            except ValueError:
                continue
    return found


def check_roles(infra: dict[str, Any], settings_source: str) -> list[str]:
    """The field roles and the FROM_GOOGLE roles the variables accept are the settings' own."""
    constants = module_constants(settings_source)
    required = list(constants.get("REQUIRED_ROLES", ()))
    known = required + list(constants.get("OPTIONAL_ROLES", ()))
    wanted = {
        ("bpium_fields", 0): required,
        ("bpium_fields", 1): known,
        ("from_google", 0): list(constants.get("FROM_GOOGLE_ROLES", ())),
    }
    problems = []
    for (variable, index), want in wanted.items():
        have = _validation_names(infra["variable"][variable], index)
        if sorted(have) != sorted(want):
            problems.append(
                f"variable {variable}: its validation accepts {', '.join(have)}; the settings "
                f"know {', '.join(want)}"
            )
    return problems


def check_sandbox(infra: dict[str, Any], stack_source: str, burst_source: str) -> list[str]:
    """The local run's copy of the queue (sandbox/stack.py) and the bench's copy of the budget
    (sandbox/burst.py) are the deployed ones, so that what they measure is what runs."""
    problems = []
    queue = infra["resource"]["google_cloud_tasks_queue"]["sync"]
    rate, retry = queue["rate_limits"][0], queue["retry_config"][0]
    deployed = {
        "max_dispatches_per_second": rate["max_dispatches_per_second"],
        "max_concurrent_dispatches": _number(rate["max_concurrent_dispatches"], infra),
        "max_attempts": retry["max_attempts"],
        "max_retry_duration": _seconds(retry["max_retry_duration"]),
        "min_backoff": _seconds(retry["min_backoff"]),
        "max_backoff": _seconds(retry["max_backoff"]),
        "max_doublings": retry["max_doublings"],
    }
    local = module_constants(stack_source).get("PRODUCTION_QUEUE", {})
    problems += [
        f"sandbox/stack.py PRODUCTION_QUEUE {key}: {local.get(key)!r}, deployed {want!r}"
        for key, want in deployed.items()
        if local.get(key) != want
    ]
    bench = module_constants(burst_source)
    if bench.get("BUDGET") != infra["locals"]["bpium_budget"]:
        problems.append(
            f"sandbox/burst.py BUDGET: {bench.get('BUDGET')!r}, deployed "
            f"{infra['locals']['bpium_budget']!r}"
        )
    if bench.get("THREADS") != infra["locals"]["threads"]:
        problems.append(
            f"sandbox/burst.py THREADS: {bench.get('THREADS')!r}, deployed "
            f"{infra['locals']['threads']!r}"
        )
    return problems
