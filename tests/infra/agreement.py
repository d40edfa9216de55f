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
    "refresh_tokens": {"google-oauth-client", "google-oauth-token"},
    "reconcile": {"bpium-credentials", "google-oauth-client", "google-oauth-token"},
    "sync_meeting": {"bpium-credentials", "google-oauth-client", "google-oauth-token"},
}
# The policy behind the grants, kept apart from SECRETS_OF so that a change to what a function
# reads cannot quietly widen it: the scenario functions call only Calendar, so their account
# reads nothing of Bpium; the webhooks are authenticated by their signature, never the API key.
# The worker is called by Cloud Tasks with an OIDC token: neither a webhook's secret string
# nor the API key is of any use to it.
BPIUM_SECRETS = frozenset({"bpium-credentials", "bpium-webhook-secret"})
SCENARIOS = frozenset({"list_events", "create_calendar"})
WEBHOOKS = frozenset({"on_meeting_created", "on_meeting_updated", "on_meeting_deleted"})
WORKERS = frozenset({"sync_meeting"})
MUST_NOT_READ = {
    **dict.fromkeys(SCENARIOS, BPIUM_SECRETS),
    **dict.fromkeys(WEBHOOKS, frozenset({"api-key"})),
    **dict.fromkeys(WORKERS, frozenset({"api-key", "bpium-webhook-secret"})),
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
# `google_service_account.NAME`): the tasks account's OIDC token is what the worker accepts,
# and only the webhooks create tasks (enqueuer on the queue, actAs on the tasks account).
TASKS_ACCOUNT = "tasks"
ENQUEUERS = frozenset({"webhooks"})
# Bpium allows the whole account 100 requests per 30 s (docs.bpium.ru), 429 beyond.
BPIUM_ACCOUNT_LIMIT = 100
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
# Called by Bpium, which cannot send Google credentials: the function authenticates itself.
INTENDED_PUBLIC = frozenset(
    {
        "on_meeting_created",
        "on_meeting_updated",
        "on_meeting_deleted",
        "list_events",
        "create_calendar",
    }
)


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
    merged: dict[str, Any] = {"resource": {}, "locals": {}, "variable": {}, "output": {}}
    for path in sorted(glob.glob(os.path.join(folder, "*.tf"))):
        with open(path, encoding="utf-8") as handle:
            data = _unquote(hcl2.load(handle))
        for block in data.get("resource", []):
            for kind, named in block.items():
                merged["resource"].setdefault(kind, {}).update(named)
        for block in data.get("locals", []):
            merged["locals"].update(block)
        for key in ("variable", "output"):
            for block in data.get(key, []):
                merged[key].update(block)
    return merged


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
        f"{n}: should be public (Bpium calls it)" for n in sorted(INTENDED_PUBLIC - public)
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
    """The worker's one invoker is the tasks account, which invokes and holds nothing else."""
    problems, invokable = [], set()
    for kind, name, grant in _grants(infra):
        who, role = _who(grant.get("member", "")), grant.get("role", "")
        if kind not in INVOKER_GRANTS or role != "roles/run.invoker":
            if who == TASKS_ACCOUNT:
                problems.append(
                    f"{kind}.{name}: grants the tasks account {role}; it holds only "
                    "roles/run.invoker on the worker"
                )
            continue
        covered = _invoked(grant, infra)
        if who == TASKS_ACCOUNT:
            invokable |= covered & WORKERS
            if covered - WORKERS:
                problems.append(
                    f"invoker grant {name}: lets the tasks account invoke "
                    f"{', '.join(sorted(covered - WORKERS))}; it may invoke only the worker"
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


def _enqueuer_problems(infra: dict[str, Any]) -> list[str]:
    """Only the webhooks hold a role on the queue, the enqueuer, and nobody one on the project."""
    problems, enqueuers = [], set()
    for name, grant in infra["resource"].get("google_cloud_tasks_queue_iam_member", {}).items():
        who, role = _who(grant.get("member", "")), grant.get("role")
        if "google_cloud_tasks_queue." not in grant.get("name", ""):
            problems.append(f"queue grant {name}: must name the queue of infra/")
        if who not in ENQUEUERS:
            problems.append(f"queue grant {name}: gives {who} {role}; only the webhooks use it")
        elif role != "roles/cloudtasks.enqueuer":
            problems.append(f"queue grant {name}: {role}; the webhooks need only the enqueuer")
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
    """Only the webhooks may act as an account, and only as the tasks account."""
    problems, acting = [], set()
    for name, grant in infra["resource"].get("google_service_account_iam_member", {}).items():
        who, role = _who(grant.get("member", "")), grant.get("role")
        target = re.search(r"google_service_account\.(\w+)\.", grant.get("service_account_id", ""))
        on = target.group(1) if target else grant.get("service_account_id")
        if on != TASKS_ACCOUNT:
            problems.append(f"account grant {name}: gives {who} {role} on {on}; only on tasks")
        elif who not in ENQUEUERS:
            problems.append(f"account grant {name}: gives {who} {role} on tasks; only the webhooks")
        elif role != "roles/iam.serviceAccountUser":
            problems.append(f"account grant {name}: {role}; actAs needs only serviceAccountUser")
        else:
            acting.add(who)
    return problems + [
        f"{a}: no roles/iam.serviceAccountUser on the tasks account (Cloud Tasks refuses a "
        "task with its OIDC token)"
        for a in sorted(ENQUEUERS - acting)
    ]


def check_queue_access(infra: dict[str, Any]) -> list[str]:
    """Cloud Tasks reaches the worker, and only the webhooks reach Cloud Tasks: the worker's
    one invoker is the tasks account, which invokes nothing else and holds nothing else; the
    webhooks alone may create tasks (enqueuer on the queue) and carry the tasks account's token
    (actAs on that account only)."""
    problems = []
    if set(infra["locals"].get("task_workers", [])) != WORKERS:
        problems.append(f"task_workers: must be {', '.join(sorted(WORKERS))}")
    if TASKS_ACCOUNT in infra["locals"]["runtime_accounts"]:
        problems.append(
            f"runtime account {TASKS_ACCOUNT}: no function may run as the tasks account"
        )
    return problems + _invoker_problems(infra) + _enqueuer_problems(infra) + _act_as_problems(infra)


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
    if total > BPIUM_ACCOUNT_LIMIT:
        problems.append(
            f"Bpium budget: {' + '.join(terms)} = {total} requests per "
            f"{BPIUM_WINDOW_SECONDS} s, more than Bpium's {BPIUM_ACCOUNT_LIMIT}"
        )
    return problems


def _pace_problems(infra: dict[str, Any]) -> list[str]:
    """The queue sends the worker no more tasks per 30 s than its share, and no more at once
    than its threads."""
    shares, problems = _shares(infra), []
    worker = sum(
        shares[n][1] * (_instances(infra, n) or 0)
        for n in WORKERS
        if n in shares and isinstance(shares[n][1], int)
    )
    capacity = infra["locals"].get("threads", 0) * sum(_instances(infra, n) or 0 for n in WORKERS)
    for name, queue in infra["resource"].get("google_cloud_tasks_queue", {}).items():
        limits = (queue.get("rate_limits") or [{}])[0]
        rate = _number(limits.get("max_dispatches_per_second"), infra)
        if not isinstance(rate, (int, float)):
            problems.append(f"queue {name}: max_dispatches_per_second must be a number")
        elif rate * BPIUM_WINDOW_SECONDS > worker:
            problems.append(
                f"queue {name}: {rate:g} tasks/s is {rate * BPIUM_WINDOW_SECONDS:g} per "
                f"{BPIUM_WINDOW_SECONDS} s, more than the worker's {worker} Bpium requests"
            )
        concurrent = _number(limits.get("max_concurrent_dispatches"), infra)
        if not isinstance(concurrent, int) or concurrent > capacity:
            problems.append(
                f"queue {name}: max_concurrent_dispatches {concurrent!r} exceeds the worker's "
                f"{capacity} threads"
            )
    return problems


def check_budget(infra: dict[str, Any], secrets_of: dict[str, set[str]] = SECRETS_OF) -> list[str]:
    """Bpium's one budget: every function that can call Bpium has a share of it, bounded in
    instances; the shares sum to at most Bpium's 100 per 30 s; the queue never sends the
    worker more tasks per 30 s than its share; each function gets its own share and bound."""
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
