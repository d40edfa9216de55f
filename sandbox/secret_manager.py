"""Secret Manager REST v1 stand-in, spoken to by the real `google-cloud-secret-manager` client.

The client (REST transport) sends `x-goog-api-client`, JSON bodies in proto3 JSON and the query
parameter `$alt=json;enum-encoding=int`, so enums in the answers are numbers when asked for that
way and names otherwise. int64 fields (`dataCrc32c`) travel as strings, bytes as base64,
timestamps as RFC 3339.

What the real service does and this stand-in copies:

- `versions/latest` is the most recently *created* version, whatever its state: if that one is
  DISABLED or DESTROYED, access answers 400 FAILED_PRECONDITION; it does not fall back to an
  older enabled version.
- Over REST the client maps errors by HTTP status only: 400 FAILED_PRECONDITION and 400
  INVALID_ARGUMENT both reach the caller as `google.api_core.exceptions.BadRequest` (the
  `status` is in `exc.response.json()`), 409 as `Conflict`, 401 as `Unauthorized`.
- A payload holds at most 64 KiB; a given `dataCrc32c` must match the data.
- DESTROYED is final: enabling or disabling a destroyed version is FAILED_PRECONDITION.

Projects may be named by id or by number. The first project id seen gets `project_number`,
other ids get numbers of their own; names in answers always use the number.

Admin routes (besides those of `sandbox.common`):

- `POST /_sandbox/secrets` {project, secretId, data (utf-8 text)} -> {"name", "version"}
- `GET  /_sandbox/secrets/<project>/<secret>/versions` -> {"versions": [{"version", "state"}]}
- `POST /_sandbox/reset` -> forget every secret, call and fault
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request

from sandbox import common

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_PAGE_SIZE = 25000
STATE_NUMBERS = {"STATE_UNSPECIFIED": 0, "ENABLED": 1, "DISABLED": 2, "DESTROYED": 3}
SECRET_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
FILTER_RE = re.compile(r"^\s*state\s*[:=]\s*([A-Za-z_]+)\s*$")

# Fields a client may send in a Secret (output-only ones are accepted and ignored, like the
# real service does).
SECRET_FIELDS = {
    "name",
    "replication",
    "createTime",
    "labels",
    "topics",
    "expireTime",
    "ttl",
    "etag",
    "rotation",
    "versionAliases",
    "annotations",
    "versionDestroyTtl",
    "customerManagedEncryption",
    "tags",
}
SECRET_ECHO_FIELDS = ("topics", "expireTime", "ttl", "rotation", "versionDestroyTtl", "tags")
ADD_VERSION_FIELDS = {"parent", "payload"}
PAYLOAD_FIELDS = {"data", "dataCrc32c"}
ETAG_BODY_FIELDS = {"name", "etag"}


# ---------------------------------------------------------------- CRC32C (Castagnoli)


def _make_crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli) of `data`, as Secret Manager computes `dataCrc32c`."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------- model


class ApiError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def response(self) -> Response:
        body = {"error": {"code": self.code, "message": self.message, "status": self.status}}
        return _json_response(body, self.code)


def _not_found(message: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


def _failed_precondition(message: str) -> ApiError:
    return ApiError(400, "FAILED_PRECONDITION", message)


@dataclass
class _Version:
    number: int
    create_time: float
    etag: str
    data: bytes | None
    client_checksum: bool
    state: str = "ENABLED"
    destroy_time: float | None = None


@dataclass
class _Secret:
    project_number: str
    secret_id: str
    create_time: float
    etag: str
    replication: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    versions: list[_Version] = field(default_factory=list)  # oldest first
    next_number: int = 1

    @property
    def name(self) -> str:
        return f"projects/{self.project_number}/secrets/{self.secret_id}"


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/json; charset=UTF-8",
    )


def _decode_base64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise _invalid(f"Invalid value at '{where}' (TYPE_BYTES), expected a base64 string")
    text = value.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed") from None


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _get(obj: dict[str, Any], camel: str) -> Any:
    """A field by its JSON (camelCase) name or its proto (snake_case) name."""
    if camel in obj:
        return obj[camel]
    return obj.get(_snake(camel))


def _check_fields(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _invalid(f"Invalid JSON payload received. '{where}' must be an object.")
    names = allowed | {_snake(name) for name in allowed}
    for key in obj:
        if key not in names:
            at = f" at '{where}'" if where else ""
            raise _invalid(
                f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.'
            )
    return obj


# ---------------------------------------------------------------- the stand-in


class SecretManagerStandIn:
    """In-memory Secret Manager with a Flask app speaking REST v1."""

    def __init__(
        self, clock: Callable[[], float] = time.time, project_number: str = "123456789012"
    ) -> None:
        if not project_number.isdigit():
            raise ValueError("project_number must be digits")
        self.clock = clock
        self.project_number = project_number
        self._lock = threading.RLock()
        self._secrets: dict[tuple[str, str], _Secret] = {}
        self._project_ids: dict[str, str] = {}
        self._etag_seq = 0
        self.recorder = common.Recorder()
        self.app = Flask("sandbox.secret_manager")
        common.install_sandbox_routes(self.app, self.recorder)
        self._install_routes()

    # ------------------------------------------------------------ Python API

    def create_secret(self, project: str, secret_id: str) -> None:
        """Ensures the secret exists (automatic replication); does nothing if it does."""
        with self._lock:
            key = (self._project(project), secret_id)
            if key not in self._secrets:
                self._insert_secret(key[0], secret_id, {"automatic": {}}, {})

    def add_version(self, project: str, secret_id: str, data: bytes) -> str:
        """Adds an enabled version (creating the secret if needed); returns its number."""
        if len(data) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        with self._lock:
            self.create_secret(project, secret_id)
            secret = self._secrets[(self._project(project), secret_id)]
            return str(self._append_version(secret, data, client_checksum=False).number)

    def access(self, project: str, secret_id: str, version: str = "latest") -> bytes:
        """The data of a version; KeyError if it is missing, disabled or destroyed."""
        with self._lock:
            try:
                secret = self._find_secret(self._project(project), secret_id)
                found = self._find_version(secret, version)
            except ApiError as exc:
                raise KeyError(exc.message) from None
            if found.state != "ENABLED" or found.data is None:
                raise KeyError(f"{secret.name}/versions/{found.number} is {found.state}")
            return found.data

    def versions(self, project: str, secret_id: str) -> list[dict[str, str]]:
        """[{"version": "3", "state": "ENABLED"}, ...], newest first; KeyError if no secret."""
        with self._lock:
            try:
                secret = self._find_secret(self._project(project), secret_id)
            except ApiError as exc:
                raise KeyError(exc.message) from None
            return [{"version": str(v.number), "state": v.state} for v in reversed(secret.versions)]

    def reset(self) -> None:
        """Forgets every secret, logged call and pending fault."""
        with self._lock:
            self._secrets.clear()
        self.recorder.reset_calls()
        self.recorder.clear_faults()

    # ------------------------------------------------------------ internals (lock held)

    def _project(self, project: str) -> str:
        if project.isdigit():
            return project
        number = self._project_ids.get(project)
        if number is None:
            number = str(int(self.project_number) + len(self._project_ids))
            self._project_ids[project] = number
        return number

    def _etag(self) -> str:
        self._etag_seq += 1
        return f'"{int(self.clock() * 1_000_000):x}{self._etag_seq:04x}"'

    def _insert_secret(
        self,
        project_number: str,
        secret_id: str,
        replication: dict[str, Any],
        spec: dict[str, Any],
    ) -> _Secret:
        secret = _Secret(
            project_number=project_number,
            secret_id=secret_id,
            create_time=self.clock(),
            etag=self._etag(),
            replication=replication,
            labels=dict(_get(spec, "labels") or {}),
            annotations=dict(_get(spec, "annotations") or {}),
            extra={k: v for k in SECRET_ECHO_FIELDS if (v := _get(spec, k)) is not None},
        )
        self._secrets[(project_number, secret_id)] = secret
        return secret

    def _append_version(self, secret: _Secret, data: bytes, client_checksum: bool) -> _Version:
        version = _Version(
            number=secret.next_number,
            create_time=self.clock(),
            etag=self._etag(),
            data=data,
            client_checksum=client_checksum,
        )
        secret.next_number += 1
        secret.versions.append(version)
        return version

    def _find_secret(self, project_number: str, secret_id: str) -> _Secret:
        secret = self._secrets.get((project_number, secret_id))
        if secret is None:
            raise _not_found(f"Secret [projects/{project_number}/secrets/{secret_id}] not found.")
        return secret

    def _find_version(self, secret: _Secret, version_id: str) -> _Version:
        if version_id == "latest":
            if not secret.versions:
                raise _not_found(f"Secret [{secret.name}] not found or has no versions.")
            return secret.versions[-1]
        number = int(version_id) if version_id.isdigit() else 0
        for version in secret.versions:
            if version.number == number:
                return version
        raise _not_found(f"Secret Version [{secret.name}/versions/{version_id}] not found.")

    # ------------------------------------------------------------ JSON views

    def _secret_json(self, secret: _Secret) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": secret.name,
            "replication": secret.replication,
            "createTime": _rfc3339(secret.create_time),
            "etag": secret.etag,
        }
        if secret.labels:
            body["labels"] = secret.labels
        if secret.annotations:
            body["annotations"] = secret.annotations
        body.update(secret.extra)
        return body

    def _version_json(self, secret: _Secret, version: _Version, int_enums: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": f"{secret.name}/versions/{version.number}",
            "createTime": _rfc3339(version.create_time),
            "state": STATE_NUMBERS[version.state] if int_enums else version.state,
            "etag": version.etag,
            "clientSpecifiedPayloadChecksum": version.client_checksum,
        }
        if version.destroy_time is not None:
            body["destroyTime"] = _rfc3339(version.destroy_time)
        if "automatic" in secret.replication:
            body["replicationStatus"] = {"automatic": {}}
        else:
            replicas = (secret.replication.get("userManaged") or {}).get("replicas") or []
            body["replicationStatus"] = {
                "userManaged": {
                    "replicas": [
                        {"location": r.get("location", "")} for r in replicas if isinstance(r, dict)
                    ]
                }
            }
        return body

    # ------------------------------------------------------------ HTTP

    def _install_routes(self) -> None:
        app = self.app

        @app.route("/v1/<path:rest>", methods=["GET", "POST", "DELETE", "PATCH", "PUT"])
        def _v1(rest: str) -> Response:
            if not request.headers.get("x-goog-api-client"):
                return ApiError(
                    401,
                    "UNAUTHENTICATED",
                    "Request is missing required authentication credential. Expected OAuth 2 "
                    "access token, login cookie or other valid authentication credential.",
                ).response()
            try:
                with self._lock:
                    return self._dispatch(request.method, rest)
            except ApiError as exc:
                return exc.response()

        @app.post(common.ADMIN_PREFIX + "secrets")
        def _admin_add() -> Response:
            spec = request.get_json(force=True, silent=True)
            if not isinstance(spec, dict) or not all(
                isinstance(spec.get(k), str) for k in ("project", "secretId", "data")
            ):
                return _invalid("body must be {project, secretId, data} strings").response()
            if not SECRET_ID_RE.match(spec["secretId"]):
                return _invalid(f"invalid secret id {spec['secretId']!r}").response()
            try:
                number = self.add_version(
                    spec["project"], spec["secretId"], spec["data"].encode("utf-8")
                )
            except ValueError as exc:
                return _invalid(str(exc)).response()
            with self._lock:
                project_number = self._project(spec["project"])
            name = f"projects/{project_number}/secrets/{spec['secretId']}/versions/{number}"
            return _json_response({"name": name, "version": number})

        @app.get(common.ADMIN_PREFIX + "secrets/<project>/<secret_id>/versions")
        def _admin_versions(project: str, secret_id: str) -> Response:
            try:
                return _json_response({"versions": self.versions(project, secret_id)})
            except KeyError as exc:
                return _not_found(str(exc.args[0])).response()

        @app.post(common.ADMIN_PREFIX + "reset")
        def _admin_reset() -> Response:
            self.reset()
            return _json_response({})

    def _dispatch(self, method: str, rest: str) -> Response:
        int_enums = "enum-encoding=int" in request.args.get("$alt", "")
        parts = rest.split("/")
        if len(parts) < 2 or parts[0] != "projects" or not parts[1]:
            raise _not_found(f"Unknown resource /v1/{rest}")
        project = self._project(parts[1])
        tail = parts[2:]

        # /v1/projects/{p}/secrets
        if tail == ["secrets"]:
            if method == "POST":
                return self._create_secret(project)
            if method == "GET":
                return self._list_secrets(project)
        # /v1/projects/{p}/secrets/{s}[:verb]
        elif len(tail) == 2 and tail[0] == "secrets":
            secret_id, _, verb = tail[1].partition(":")
            secret = self._find_secret(project, secret_id)
            if not verb and method == "GET":
                return _json_response(self._secret_json(secret))
            if not verb and method == "DELETE":
                etag = request.args.get("etag")
                if etag and etag != secret.etag:
                    raise ApiError(409, "ABORTED", "The etag does not match the secret's etag.")
                del self._secrets[(project, secret_id)]
                return _json_response({})
            if verb == "addVersion" and method == "POST":
                return self._add_version(secret, int_enums)
        # /v1/projects/{p}/secrets/{s}/versions
        elif len(tail) == 3 and tail[0] == "secrets" and tail[2] == "versions":
            if method == "GET":
                return self._list_versions(self._find_secret(project, tail[1]), int_enums)
        # /v1/projects/{p}/secrets/{s}/versions/{v}[:verb]
        elif len(tail) == 4 and tail[0] == "secrets" and tail[2] == "versions":
            version_id, _, verb = tail[3].partition(":")
            secret = self._find_secret(project, tail[1])
            version = self._find_version(secret, version_id)
            if not verb and method == "GET":
                return _json_response(self._version_json(secret, version, int_enums))
            if verb == "access" and method == "GET":
                return self._access(secret, version)
            if verb in ("enable", "disable", "destroy") and method == "POST":
                return self._change_state(secret, version, verb, int_enums)
        raise _not_found(f"Method {method} /v1/{rest} is not found.")

    def _body(self) -> dict[str, Any]:
        raw = request.get_data()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise _invalid("Invalid JSON payload received.") from None
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received. Expected an object.")
        return body

    def _create_secret(self, project: str) -> Response:
        secret_id = request.args.get("secretId", request.args.get("secret_id", ""))
        if not SECRET_ID_RE.match(secret_id):
            raise _invalid(
                "The secret ID must be 1 to 255 characters: letters, digits, '_' or '-'."
            )
        spec = _check_fields(self._body(), SECRET_FIELDS, "")
        replication = _get(spec, "replication")
        if not isinstance(replication, dict) or not replication:
            raise _invalid("Secret.replication is required.")
        _check_fields(replication, {"automatic", "userManaged"}, "replication")
        automatic, user_managed = _get(replication, "automatic"), _get(replication, "userManaged")
        if (automatic is None) == (user_managed is None):
            raise _invalid("Secret.replication must be either automatic or userManaged.")
        if user_managed is not None:
            replicas = user_managed.get("replicas") if isinstance(user_managed, dict) else None
            if (
                not isinstance(replicas, list)
                or not replicas
                or not all(
                    isinstance(r, dict) and isinstance(r.get("location"), str) and r["location"]
                    for r in replicas
                )
            ):
                raise _invalid("Secret.replication.userManaged.replicas must name locations.")
            replication = {"userManaged": user_managed}
        else:
            replication = {"automatic": automatic}
        labels = _get(spec, "labels") or {}
        if (
            not isinstance(labels, dict)
            or len(labels) > 64
            or not all(
                isinstance(k, str)
                and LABEL_KEY_RE.match(k)
                and isinstance(v, str)
                and LABEL_VALUE_RE.match(v)
                for k, v in labels.items()
            )
        ):
            raise _invalid("Secret.labels are invalid.")
        if (project, secret_id) in self._secrets:
            raise ApiError(
                409,
                "ALREADY_EXISTS",
                f"Secret [projects/{project}/secrets/{secret_id}] already exists.",
            )
        if _get(spec, "versionAliases"):
            raise _invalid("Secret.versionAliases must refer to existing versions.")
        secret = self._insert_secret(project, secret_id, replication, spec)
        return _json_response(self._secret_json(secret))

    def _list_secrets(self, project: str) -> Response:
        secrets = [s for (p, _), s in self._secrets.items() if p == project]
        page, token = self._page(secrets, f"secrets:{project}")
        body: dict[str, Any] = {"secrets": [self._secret_json(s) for s in page]}
        if token:
            body["nextPageToken"] = token
        body["totalSize"] = len(secrets)
        return _json_response(body)

    def _add_version(self, secret: _Secret, int_enums: bool) -> Response:
        body = _check_fields(self._body(), ADD_VERSION_FIELDS, "")
        payload = _check_fields(_get(body, "payload") or {}, PAYLOAD_FIELDS, "payload")
        data = _decode_base64(_get(payload, "data") or "", "payload.data")
        if len(data) > MAX_PAYLOAD_BYTES:
            raise _invalid(
                f"Secret payload data is {len(data)} bytes; the limit is {MAX_PAYLOAD_BYTES}."
            )
        given = _get(payload, "dataCrc32c")
        if given is not None:
            try:
                checksum = int(given)
            except (TypeError, ValueError):
                raise _invalid(
                    f"Invalid value at 'payload.data_crc32c' (TYPE_INT64), {json.dumps(given)}"
                ) from None
            if checksum != crc32c(data):
                raise _invalid(
                    "Checksum mismatch: the CRC32C of payload.data does not match "
                    "payload.dataCrc32c."
                )
        version = self._append_version(secret, data, client_checksum=given is not None)
        return _json_response(self._version_json(secret, version, int_enums))

    def _access(self, secret: _Secret, version: _Version) -> Response:
        name = f"{secret.name}/versions/{version.number}"
        if version.state != "ENABLED" or version.data is None:
            raise _failed_precondition(f"Secret Version [{name}] is in {version.state} state.")
        return _json_response(
            {
                "name": name,
                "payload": {
                    "data": base64.b64encode(version.data).decode("ascii"),
                    "dataCrc32c": str(crc32c(version.data)),
                },
            }
        )

    def _change_state(
        self, secret: _Secret, version: _Version, verb: str, int_enums: bool
    ) -> Response:
        body = _check_fields(self._body(), ETAG_BODY_FIELDS, "")
        etag = _get(body, "etag")
        if etag and etag != version.etag:
            raise ApiError(409, "ABORTED", "The etag does not match the secret version's etag.")
        name = f"{secret.name}/versions/{version.number}"
        if version.state == "DESTROYED":
            raise _failed_precondition(f"Secret Version [{name}] is in DESTROYED state.")
        new_state = {"enable": "ENABLED", "disable": "DISABLED", "destroy": "DESTROYED"}[verb]
        if new_state != version.state:
            version.state = new_state
            version.etag = self._etag()
            if new_state == "DESTROYED":
                version.data = None
                version.destroy_time = self.clock()
        return _json_response(self._version_json(secret, version, int_enums))

    def _list_versions(self, secret: _Secret, int_enums: bool) -> Response:
        text = request.args.get("filter", "")
        versions = list(reversed(secret.versions))
        if text.strip():
            match = FILTER_RE.match(text)
            state = match.group(1).upper() if match else ""
            if state not in ("ENABLED", "DISABLED", "DESTROYED"):
                raise _invalid(f"Invalid filter: {text!r}.")
            versions = [v for v in versions if v.state == state]
        page, token = self._page(versions, f"versions:{secret.name}:{text}")
        body: dict[str, Any] = {
            "versions": [self._version_json(secret, v, int_enums) for v in page],
        }
        if token:
            body["nextPageToken"] = token
        body["totalSize"] = len(versions)
        return _json_response(body)

    def _page(self, items: list[Any], query: str) -> tuple[list[Any], str]:
        """Slices `items` by pageSize/pageToken; the token is bound to `query`."""
        size_text = request.args.get("pageSize", request.args.get("page_size", "0")) or "0"
        try:
            size = int(size_text)
        except ValueError:
            raise _invalid(f"Invalid value for pageSize: {size_text!r}") from None
        if size < 0:
            raise _invalid("pageSize must not be negative.")
        size = min(size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        token = request.args.get("pageToken", request.args.get("page_token", ""))
        offset = 0
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
                offset = int(decoded["o"])
                valid = decoded["q"] == query and offset >= 0
            except (ValueError, KeyError, TypeError, binascii.Error):
                valid = False
            if not valid:
                raise _invalid("Invalid page token.")
        page = items[offset : offset + size]
        next_token = ""
        if offset + size < len(items):
            raw = json.dumps({"o": offset + size, "q": query}).encode()
            next_token = base64.urlsafe_b64encode(raw).decode("ascii")
        return page, next_token


def serve(port: int = 0) -> tuple[SecretManagerStandIn, common.ServerThread]:
    """Starts a stand-in on 127.0.0.1:`port` (0 = any free port) in a daemon thread."""
    stand_in = SecretManagerStandIn()
    return stand_in, common.ServerThread(stand_in.app, port).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8085)
    args = parser.parse_args()
    _, server = serve(args.port)
    print(f"Secret Manager stand-in on {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
