"""Secrets from Secret Manager or a local folder, cached per instance with a time limit."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from google.api_core import exceptions as gexc

from . import log
from .errors import ConfigError, UpstreamError, UpstreamUnavailable
from .retry import with_retries

if TYPE_CHECKING:
    from google.cloud.secretmanager import SecretManagerServiceClient

BPIUM_CREDENTIALS = "bpium-credentials"
BPIUM_WEBHOOK_SECRET = "bpium-webhook-secret"  # noqa: S105 - a secret's name
API_KEY = "api-key"
MIN_SHARED_SECRET = 16  # characters; the webhook secret and the API key authenticate callers
GOOGLE_OAUTH_CLIENT = "google-oauth-client"
GOOGLE_OAUTH_TOKEN = "google-oauth-token"  # noqa: S105 - a secret's name
# The token our push channels carry (X-Goog-Channel-Token): Google's pushes prove themselves
# with it alone.
GOOGLE_CHANNEL_TOKEN = "google-channel-token"  # noqa: S105 - a secret's name

DEFAULT_MAX_AGE = 300.0
# Fields of the JSON secrets that are not secret: masking them would only blur the logs.
_PUBLIC_KEYS = frozenset({"expiry", "scopes", "scope", "token_uri", "auth_uri"})


class SecretSource(Protocol):
    def read(self, name: str) -> str: ...

    def write(self, name: str, value: str) -> str:
        """Stores a new value; returns its version."""
        ...

    def prune(self, name: str, *, keep: int, protect: str) -> int:
        """Destroys all but the `keep` newest enabled versions (never `protect`)."""
        ...


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum Secret Manager returns with every payload."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class LocalFolderSource:
    """One file per secret under a folder: for local runs and workstation set-up."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def read(self, name: str) -> str:
        path = self.folder / name
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError as exc:
            raise ConfigError(f"secret {name} not found at {path}", code="secret_missing") from exc

    def write(self, name: str, value: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(value, encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)  # atomic: a reader sees the old value or the new one
        return "file"

    def prune(self, name: str, *, keep: int, protect: str) -> int:
        return 0  # a file has one version


class SecretManagerSource:
    """Secret Manager through the official client (REST transport)."""

    def __init__(self, client: SecretManagerServiceClient, project: str) -> None:
        self.client = client
        self.project = project

    def _name(self, name: str) -> str:
        return f"projects/{self.project}/secrets/{name}"

    def read(self, name: str) -> str:
        def attempt() -> str:
            with _mapped_errors(name):
                response = self.client.access_secret_version(
                    name=f"{self._name(name)}/versions/latest", retry=None, timeout=10.0
                )
            data: bytes = response.payload.data
            if response.payload.data_crc32c and crc32c(data) != response.payload.data_crc32c:
                raise UpstreamUnavailable(
                    f"secret {name}: checksum mismatch", code="secret_corrupt"
                )
            return data.decode("utf-8").strip()

        return with_retries(attempt, what=f"secret_manager.access:{name}")

    def write(self, name: str, value: str) -> str:
        data = value.encode("utf-8")
        request = {
            "parent": self._name(name),
            "payload": {"data": data, "data_crc32c": crc32c(data)},
        }

        def attempt() -> str:
            with _mapped_errors(name):
                version = self.client.add_secret_version(request=request, retry=None, timeout=10.0)
            return str(version.name).rsplit("/", 1)[-1]

        return with_retries(attempt, what=f"secret_manager.add_version:{name}")

    def _versions(self, name: str, state: str) -> list[str]:
        def attempt() -> list[str]:
            with _mapped_errors(name):
                pager = self.client.list_secret_versions(
                    request={"parent": self._name(name), "filter": f"state:{state}"},
                    retry=None,
                    timeout=10.0,
                )
                return [str(v.name).rsplit("/", 1)[-1] for v in pager]

        return with_retries(attempt, what=f"secret_manager.list_versions:{name}")

    def prune(self, name: str, *, keep: int, protect: str) -> int:
        # Each enabled version is billed; destroyed ones are not. Destroying never touches
        # the newest versions, so `latest` always resolves to a readable one.
        enabled = sorted(self._versions(name, "ENABLED"), key=int, reverse=True)
        doomed = [v for v in enabled[keep:] if v != protect]
        doomed += [v for v in self._versions(name, "DISABLED") if v != protect]
        for version in doomed:
            try:
                with _mapped_errors(name):
                    self.client.destroy_secret_version(
                        request={"name": f"{self._name(name)}/versions/{version}"},
                        retry=None,
                        timeout=10.0,
                    )
            except ConfigError:
                pass  # destroyed meanwhile by a run beside us: the goal is reached
        return len(doomed)


@contextmanager
def _mapped_errors(name: str) -> Iterator[None]:
    """Turns google.api_core errors into ours at the adapter boundary."""
    try:
        yield
    # Over REST a disabled or destroyed version is a plain 400 (BadRequest), not
    # FailedPrecondition: both mean an operator must fix the secret.
    except (gexc.NotFound, gexc.PermissionDenied, gexc.FailedPrecondition, gexc.BadRequest) as exc:
        raise ConfigError(
            f"secret {name} is missing or not accessible: {type(exc).__name__}",
            code="secret_missing",
        ) from exc
    except (gexc.TooManyRequests, gexc.ServerError, gexc.RetryError) as exc:
        raise UpstreamUnavailable(f"Secret Manager unavailable for {name}") from exc
    except gexc.GoogleAPICallError as exc:
        raise UpstreamError(f"Secret Manager refused {name}: {type(exc).__name__}") from exc
    except OSError as exc:  # connection refused and timeouts (requests' errors are OSErrors)
        raise UpstreamUnavailable(f"Secret Manager unreachable for {name}") from exc


@dataclass
class _Entry:
    value: str
    read_at: float


class SecretStore:
    """Caches secret values for `max_age` seconds; thread-safe; masks values in logs."""

    def __init__(
        self,
        source: SecretSource,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.max_age = max_age
        self.clock = clock
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, name: str, *, fresh: bool = False) -> str:
        """The secret's value; `fresh` skips the cache (after a value was found stale)."""
        now = self.clock()
        with self._lock:
            entry = self._cache.get(name)
            if entry and not fresh and now - entry.read_at < self.max_age:
                return entry.value
        value = self.source.read(name)
        log.register_secret(value)
        with self._lock:
            self._cache[name] = _Entry(value, now)
        return value

    def get_strong(self, name: str) -> str:
        """A shared secret that authenticates callers (the webhook secret string, the API
        key): one that is empty, blank or short fails closed, on every request, before any
        call. An empty HMAC key would accept any body signed with an empty key."""
        value = self.get(name)
        if len(value.strip()) < MIN_SHARED_SECRET:
            raise ConfigError(
                f"secret {name} is empty or shorter than {MIN_SHARED_SECRET} characters: "
                "store a long random value (make secrets)",
                problems=[name],
            )
        return value

    def get_json(self, name: str, *, fresh: bool = False) -> dict[str, Any]:
        try:
            data = json.loads(self.get(name, fresh=fresh))
        except ValueError as exc:
            raise ConfigError(f"secret {name} is not valid JSON", code="secret_invalid") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"secret {name} must be a JSON object", code="secret_invalid")
        for key, value in data.items():
            if isinstance(value, str) and key not in _PUBLIC_KEYS:
                log.register_secret(value)
        return data

    def put(self, name: str, value: str) -> str:
        """Stores a new value (a new version), caches it, and returns the version."""
        log.register_secret(value)
        version = self.source.write(name, value)
        with self._lock:
            self._cache[name] = _Entry(value, self.clock())
        return version

    def prune(self, name: str, *, keep: int, protect: str) -> int:
        """Destroys old versions of `name`; returns how many."""
        return self.source.prune(name, keep=keep, protect=protect)
