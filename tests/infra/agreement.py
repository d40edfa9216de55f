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
}
# The policy behind the grants, kept apart from SECRETS_OF so that a change to what a function
# reads cannot quietly widen it: the scenario functions call only Calendar, so their account
# reads nothing of Bpium; the webhooks are authenticated by their signature, never the API key.
BPIUM_SECRETS = frozenset({"bpium-credentials", "bpium-webhook-secret"})
SCENARIOS = frozenset({"list_events", "create_calendar"})
WEBHOOKS = frozenset({"on_meeting_created", "on_meeting_updated", "on_meeting_deleted"})
MUST_NOT_READ = {
    **dict.fromkeys(SCENARIOS, BPIUM_SECRETS),
    **dict.fromkeys(WEBHOOKS, frozenset({"api-key"})),
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


def check_environment(infra: dict[str, Any], settings_source: str) -> list[str]:
    known, required = settings_variables(settings_source)
    env = set(infra["locals"]["environment"])
    problems = [
        f"{n}: set by Terraform but unknown to the settings"
        for n in sorted(env - known - RUNTIME_VARIABLES)
    ]
    problems += [
        f"{n}: required by the settings but not set by Terraform" for n in sorted(required - env)
    ]
    functions = infra["resource"]["google_cloudfunctions2_function"]
    for name, body in functions.items():
        if body["service_config"][0].get("environment_variables") != "${local.environment}":
            problems.append(f"function {name}: environment_variables must be local.environment")
    return problems


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
