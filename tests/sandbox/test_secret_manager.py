"""The Secret Manager stand-in, driven by the real google-cloud-secret-manager client (REST)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import google.auth.credentials
import pytest
from google.api_core import exceptions, retry
from google.cloud import secretmanager

from sandbox.common import ServerThread
from sandbox.secret_manager import MAX_PAYLOAD_BYTES, SecretManagerStandIn, crc32c, serve

PROJECT = "demo-project"
NUMBER = "123456789012"
START = 1_700_000_000.0
State = secretmanager.SecretVersion.State
AUTOMATIC = secretmanager.Secret(
    replication=secretmanager.Replication(automatic=secretmanager.Replication.Automatic())
)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def shared(clock: FakeClock) -> Iterator[tuple[SecretManagerStandIn, ServerThread]]:
    """One server for the module (stopping one costs half a second); reset for each test."""
    stand_in = SecretManagerStandIn(clock=clock, project_number=NUMBER)
    stand_in.create_secret(PROJECT, "first")  # PROJECT is the first id seen: it gets NUMBER
    thread = ServerThread(stand_in.app).start()
    yield stand_in, thread
    thread.stop()


@pytest.fixture
def stand_in(
    shared: tuple[SecretManagerStandIn, ServerThread], clock: FakeClock
) -> SecretManagerStandIn:
    shared[0].reset()
    clock.now = START
    return shared[0]


@pytest.fixture
def server(
    shared: tuple[SecretManagerStandIn, ServerThread], stand_in: SecretManagerStandIn
) -> ServerThread:
    return shared[1]


def make_client(url: str) -> secretmanager.SecretManagerServiceClient:
    return secretmanager.SecretManagerServiceClient(
        transport="rest",
        credentials=google.auth.credentials.AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": url},
    )


@pytest.fixture
def client(server: ServerThread) -> secretmanager.SecretManagerServiceClient:
    return make_client(server.url)


def secret_path(secret_id: str, project: str = PROJECT) -> str:
    return f"projects/{project}/secrets/{secret_id}"


def create(client: secretmanager.SecretManagerServiceClient, secret_id: str) -> Any:
    return client.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id=secret_id,
        secret=AUTOMATIC,
    )


def add(client: secretmanager.SecretManagerServiceClient, secret_id: str, data: bytes) -> Any:
    return client.add_secret_version(
        parent=secret_path(secret_id),
        payload=secretmanager.SecretPayload(data=data, data_crc32c=crc32c(data)),
    )


def status_of(error: exceptions.GoogleAPICallError) -> str:
    assert error.response is not None
    return str(error.response.json()["error"]["status"])


def raw(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# ------------------------------------------------------------------ CRC32C


def test_crc32c_known_vectors() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720, B.4
    assert crc32c(b"\xff" * 32) == 0x62A8AB43


# ------------------------------------------------------------------ secrets


def test_create_get_and_conflict(client: secretmanager.SecretManagerServiceClient) -> None:
    secret = client.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id="api-key",
        secret=secretmanager.Secret(replication=AUTOMATIC.replication, labels={"team": "calendar"}),
    )
    assert secret.name == f"projects/{NUMBER}/secrets/api-key"
    assert secret.labels == {"team": "calendar"}
    assert "automatic" in secretmanager.Replication.to_dict(secret.replication)
    assert secret.create_time.timestamp() == START + 1
    assert secret.etag.startswith('"')

    # the project by number is the same project
    again = client.get_secret(name=f"projects/{NUMBER}/secrets/api-key")
    assert again.name == secret.name

    with pytest.raises(exceptions.Conflict) as info:
        create(client, "api-key")
    assert status_of(info.value) == "ALREADY_EXISTS"


def test_create_checks_id_and_replication(
    client: secretmanager.SecretManagerServiceClient,
) -> None:
    with pytest.raises(exceptions.BadRequest) as info:
        create(client, "bad id!")
    assert status_of(info.value) == "INVALID_ARGUMENT"
    with pytest.raises(exceptions.BadRequest) as info:
        client.create_secret(
            parent=f"projects/{PROJECT}", secret_id="x", secret=secretmanager.Secret()
        )
    assert "replication" in info.value.message
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=secret_path("x"))


def test_list_and_delete_secrets(client: secretmanager.SecretManagerServiceClient) -> None:
    for name in ("a", "b", "c"):
        create(client, name)
    pager = client.list_secrets(request={"parent": f"projects/{PROJECT}", "page_size": 2})
    names = [s.name.rsplit("/", 1)[1] for s in pager]
    assert names == ["a", "b", "c"]

    client.delete_secret(name=secret_path("b"))
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=secret_path("b"))
    with pytest.raises(exceptions.NotFound):
        client.delete_secret(name=secret_path("b"))
    remaining = [s.name for s in client.list_secrets(parent=f"projects/{PROJECT}")]
    assert remaining == [f"projects/{NUMBER}/secrets/a", f"projects/{NUMBER}/secrets/c"]


# ------------------------------------------------------------------ versions


def test_add_and_access(
    client: secretmanager.SecretManagerServiceClient, stand_in: SecretManagerStandIn
) -> None:
    create(client, "token")
    first = add(client, "token", b'{"access_token": "one"}')
    assert first.name == f"projects/{NUMBER}/secrets/token/versions/1"
    assert first.state == State.ENABLED
    assert first.client_specified_payload_checksum is True
    second = client.add_secret_version(
        parent=secret_path("token"),
        payload=secretmanager.SecretPayload(data=b'{"access_token": "two"}'),
    )
    assert second.name.endswith("/versions/2")
    assert second.client_specified_payload_checksum is False

    latest = client.access_secret_version(name=f"{secret_path('token')}/versions/latest")
    assert latest.name == f"projects/{NUMBER}/secrets/token/versions/2"
    assert latest.payload.data == b'{"access_token": "two"}'
    assert latest.payload.data_crc32c == crc32c(latest.payload.data)

    one = client.access_secret_version(name=f"{secret_path('token')}/versions/1")
    assert one.payload.data == b'{"access_token": "one"}'
    assert one.payload.data_crc32c == crc32c(b'{"access_token": "one"}')

    meta = client.get_secret_version(name=f"{secret_path('token')}/versions/latest")
    assert meta.name.endswith("/versions/2")
    assert meta.state == State.ENABLED
    assert not meta.destroy_time

    assert stand_in.access(PROJECT, "token") == b'{"access_token": "two"}'
    assert stand_in.access(NUMBER, "token", "1") == b'{"access_token": "one"}'


def test_disable_makes_latest_fail_not_fall_back(
    client: secretmanager.SecretManagerServiceClient, stand_in: SecretManagerStandIn
) -> None:
    # The real service resolves `latest` to the newest version whatever its state.
    create(client, "token")
    add(client, "token", b"old")
    add(client, "token", b"new")
    disabled = client.disable_secret_version(name=f"{secret_path('token')}/versions/2")
    assert disabled.state == State.DISABLED

    with pytest.raises(exceptions.BadRequest) as info:
        client.access_secret_version(name=f"{secret_path('token')}/versions/latest")
    assert status_of(info.value) == "FAILED_PRECONDITION"
    assert "versions/2] is in DISABLED state" in info.value.message
    # over REST the client maps by HTTP status only: 400 is BadRequest, never FailedPrecondition
    assert type(info.value) is exceptions.BadRequest

    assert (
        client.access_secret_version(name=f"{secret_path('token')}/versions/1").payload.data
        == b"old"
    )
    with pytest.raises(KeyError):
        stand_in.access(PROJECT, "token")

    enabled = client.enable_secret_version(name=f"{secret_path('token')}/versions/2")
    assert enabled.state == State.ENABLED
    assert enabled.etag != disabled.etag
    latest = client.access_secret_version(name=f"{secret_path('token')}/versions/latest")
    assert latest.payload.data == b"new"


def test_destroy_clears_payload_and_is_final(
    client: secretmanager.SecretManagerServiceClient, stand_in: SecretManagerStandIn
) -> None:
    create(client, "token")
    add(client, "token", b"v1")
    add(client, "token", b"v2")
    name = f"{secret_path('token')}/versions/1"
    destroyed = client.destroy_secret_version(name=name)
    assert destroyed.state == State.DESTROYED
    assert destroyed.destroy_time.timestamp() > START

    with pytest.raises(exceptions.BadRequest) as info:
        client.access_secret_version(name=name)
    assert status_of(info.value) == "FAILED_PRECONDITION"
    assert "DESTROYED" in info.value.message
    for verb in (client.enable_secret_version, client.disable_secret_version):
        with pytest.raises(exceptions.BadRequest) as info:
            verb(name=name)
        assert status_of(info.value) == "FAILED_PRECONDITION"

    assert stand_in.versions(PROJECT, "token") == [
        {"version": "2", "state": "ENABLED"},
        {"version": "1", "state": "DESTROYED"},
    ]
    with pytest.raises(KeyError):
        stand_in.access(PROJECT, "token", "1")
    assert stand_in.access(PROJECT, "token") == b"v2"


def test_etag_must_match(client: secretmanager.SecretManagerServiceClient) -> None:
    create(client, "token")
    version = add(client, "token", b"v1")
    with pytest.raises(exceptions.Conflict) as info:
        client.disable_secret_version(request={"name": version.name, "etag": '"stale"'})
    assert status_of(info.value) == "ABORTED"
    done = client.disable_secret_version(request={"name": version.name, "etag": version.etag})
    assert done.state == State.DISABLED


def test_not_found(client: secretmanager.SecretManagerServiceClient) -> None:
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(name=f"{secret_path('nope')}/versions/latest")
    with pytest.raises(exceptions.NotFound):
        client.add_secret_version(
            parent=secret_path("nope"), payload=secretmanager.SecretPayload(data=b"x")
        )
    create(client, "empty")
    with pytest.raises(exceptions.NotFound) as info:
        client.access_secret_version(name=f"{secret_path('empty')}/versions/latest")
    assert status_of(info.value) == "NOT_FOUND"
    add(client, "empty", b"x")
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(name=f"{secret_path('empty')}/versions/7")
    with pytest.raises(exceptions.NotFound):
        client.get_secret_version(name=f"{secret_path('empty')}/versions/7")


def test_list_versions_with_filter_and_pages(
    client: secretmanager.SecretManagerServiceClient,
) -> None:
    create(client, "token")
    for i in range(5):
        add(client, "token", f"v{i + 1}".encode())
    client.disable_secret_version(name=f"{secret_path('token')}/versions/2")
    client.destroy_secret_version(name=f"{secret_path('token')}/versions/4")

    pager = client.list_secret_versions(request={"parent": secret_path("token"), "page_size": 2})
    pages = list(pager.pages)
    assert [len(p.versions) for p in pages] == [2, 2, 1]
    assert pages[0].total_size == 5
    numbers = [v.name.rsplit("/", 1)[1] for p in pages for v in p.versions]
    assert numbers == ["5", "4", "3", "2", "1"]

    def listed(state_filter: str) -> list[str]:
        pager = client.list_secret_versions(
            request={"parent": secret_path("token"), "filter": state_filter}
        )
        return [v.name.rsplit("/", 1)[1] for v in pager]

    assert listed("state:ENABLED") == ["5", "3", "1"]
    assert listed("state:DISABLED") == ["2"]
    assert listed("state:DESTROYED") == ["4"]
    with pytest.raises(exceptions.BadRequest) as info:
        listed("name:foo")
    assert status_of(info.value) == "INVALID_ARGUMENT"


def test_checksum_mismatch_and_size_limit(
    client: secretmanager.SecretManagerServiceClient, stand_in: SecretManagerStandIn
) -> None:
    create(client, "token")
    with pytest.raises(exceptions.BadRequest) as info:
        client.add_secret_version(
            parent=secret_path("token"),
            payload=secretmanager.SecretPayload(
                data=b"payload", data_crc32c=crc32c(b"payload") ^ 1
            ),
        )
    assert status_of(info.value) == "INVALID_ARGUMENT"
    assert "Checksum mismatch" in info.value.message

    with pytest.raises(exceptions.BadRequest) as info:
        add(client, "token", b"x" * (MAX_PAYLOAD_BYTES + 1))
    assert status_of(info.value) == "INVALID_ARGUMENT"
    assert stand_in.versions(PROJECT, "token") == []

    biggest = add(client, "token", b"x" * MAX_PAYLOAD_BYTES)
    assert biggest.name.endswith("/versions/1")


def test_injected_fault_reaches_client(
    client: secretmanager.SecretManagerServiceClient,
    server: ServerThread,
    stand_in: SecretManagerStandIn,
) -> None:
    create(client, "token")
    add(client, "token", b"v1")
    name = f"{secret_path('token')}/versions/latest"
    status, _ = raw(server.url + "/_sandbox/faults", "POST", {"path": r":access$", "status": 503})
    assert status == 200
    with pytest.raises(exceptions.ServiceUnavailable):
        client.access_secret_version(name=name, retry=None)
    assert client.access_secret_version(name=name, retry=None).payload.data == b"v1"

    # with a retry, the client rides over a transient 503 by itself
    raw(server.url + "/_sandbox/faults", "POST", {"path": r":access$", "status": 503})
    stand_in.recorder.reset_calls()
    fast = retry.Retry(
        initial=0.01,
        maximum=0.05,
        predicate=retry.if_exception_type(exceptions.ServiceUnavailable),
        timeout=5,
    )
    assert client.access_secret_version(name=name, retry=fast).payload.data == b"v1"
    assert stand_in.recorder.count("GET", r":access$") == 2


# ------------------------------------------------------------------ wire details


def test_wire_format_and_auth(server: ServerThread, stand_in: SecretManagerStandIn) -> None:
    stand_in.add_version(PROJECT, "token", b"\x00\xffbinary")
    url = f"{server.url}/v1/projects/{NUMBER}/secrets/token/versions/1"
    client_header = {"x-goog-api-client": "gl-python/3.11 gapic/test"}

    status, body = raw(url)
    assert status == 401
    assert body["error"]["status"] == "UNAUTHENTICATED"

    status, body = raw(url, headers=client_header)
    assert status == 200
    assert body["state"] == "ENABLED"
    assert datetime.fromisoformat(body["createTime"]) > datetime.fromtimestamp(START, UTC)

    status, body = raw(url + "?%24alt=json%3Benum-encoding%3Dint", headers=client_header)
    assert body["state"] == 1

    status, body = raw(url + ":access", headers=client_header)
    assert base64.b64decode(body["payload"]["data"]) == b"\x00\xffbinary"
    assert body["payload"]["dataCrc32c"] == str(crc32c(b"\x00\xffbinary"))

    status, body = raw(
        f"{server.url}/v1/projects/{NUMBER}/secrets/token:addVersion",
        "POST",
        {"payload": {"data": "aGk=", "extra": 1}},
        client_header,
    )
    assert status == 400
    assert "Unknown name" in body["error"]["message"]


def test_admin_routes(
    client: secretmanager.SecretManagerServiceClient, server: ServerThread
) -> None:
    status, body = raw(
        server.url + "/_sandbox/secrets",
        "POST",
        {"project": PROJECT, "secretId": "api-key", "data": "ключ"},
    )
    assert status == 200
    assert body == {"name": f"projects/{NUMBER}/secrets/api-key/versions/1", "version": "1"}
    raw(
        server.url + "/_sandbox/secrets",
        "POST",
        {"project": NUMBER, "secretId": "api-key", "data": "second"},
    )
    status, body = raw(f"{server.url}/_sandbox/secrets/{PROJECT}/api-key/versions")
    assert body == {
        "versions": [{"version": "2", "state": "ENABLED"}, {"version": "1", "state": "ENABLED"}]
    }
    one = client.access_secret_version(name=f"{secret_path('api-key')}/versions/1")
    assert one.payload.data == "ключ".encode()

    status, _ = raw(f"{server.url}/_sandbox/secrets/{PROJECT}/nope/versions")
    assert status == 404
    status, _ = raw(server.url + "/_sandbox/secrets", "POST", {"project": PROJECT})
    assert status == 400

    assert raw(server.url + "/_sandbox/reset", "POST", {})[0] == 200
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=secret_path("api-key"))


# ------------------------------------------------------------------ Python API


def test_python_api(stand_in: SecretManagerStandIn) -> None:
    assert stand_in.add_version(PROJECT, "s", b"a") == "1"
    stand_in.create_secret(PROJECT, "s")  # exists already: nothing happens
    assert stand_in.add_version(NUMBER, "s", b"b") == "2"
    assert stand_in.access(PROJECT, "s") == b"b"
    assert stand_in.versions(NUMBER, "s")[0] == {"version": "2", "state": "ENABLED"}

    # another project id is another project
    with pytest.raises(KeyError):
        stand_in.access("other-project", "s")
    stand_in.add_version("other-project", "s", b"c")
    assert stand_in.access("other-project", "s") == b"c"
    assert stand_in.access(PROJECT, "s") == b"b"

    stand_in.create_secret(PROJECT, "empty")
    assert stand_in.versions(PROJECT, "empty") == []
    with pytest.raises(KeyError):
        stand_in.access(PROJECT, "empty")
    with pytest.raises(KeyError):
        stand_in.versions(PROJECT, "missing")
    with pytest.raises(ValueError, match="exceeds"):
        stand_in.add_version(PROJECT, "s", b"x" * (MAX_PAYLOAD_BYTES + 1))

    stand_in.reset()
    with pytest.raises(KeyError):
        stand_in.versions(PROJECT, "s")


def test_concurrent_adds_get_distinct_numbers() -> None:
    stand_in, server = serve()
    try:
        stand_in.create_secret(PROJECT, "token")

        def worker(n: int) -> list[str]:
            client = make_client(server.url)
            return [add(client, "token", f"{n}-{i}".encode()).name for i in range(5)]

        with ThreadPoolExecutor(max_workers=8) as pool:
            names = [name for batch in pool.map(worker, range(8)) for name in batch]
        assert len(set(names)) == 40
        assert [v["version"] for v in stand_in.versions(PROJECT, "token")] == [
            str(n) for n in range(40, 0, -1)
        ]
    finally:
        server.stop()
