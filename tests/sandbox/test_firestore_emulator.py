"""The Firestore emulator harness, with the real google-cloud-firestore client against it."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import firestore

from sandbox import firestore_emulator
from sandbox.firestore_emulator import FirestoreEmulator

PROJECT = "test-project"


@pytest.fixture(scope="module")
def emulator() -> Iterator[FirestoreEmulator]:
    with firestore_emulator.start() as started:
        yield started


@pytest.fixture
def client(emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch) -> firestore.Client:
    for name, value in emulator.env.items():
        monkeypatch.setenv(name, value)
    emulator.reset(PROJECT)
    emulator.reset(PROJECT, "bpium-gcal")
    return firestore.Client(project=PROJECT)


def test_client_writes_and_reads_a_document(client: firestore.Client) -> None:
    client.document("meetings/m1").set({"title": "Планёрка", "attendees": 3})

    assert client.document("meetings/m1").get().to_dict() == {"title": "Планёрка", "attendees": 3}


def test_concurrent_transactions_lose_no_increment(client: firestore.Client) -> None:
    counter = client.document("counters/c1")
    counter.set({"n": 0})
    both_ready = threading.Barrier(2)
    errors: list[BaseException] = []

    @firestore.transactional
    def increment(transaction: firestore.Transaction) -> None:
        snapshot = counter.get(transaction=transaction)
        transaction.update(counter, {"n": snapshot.get("n") + 1})

    def work() -> None:
        both_ready.wait()
        try:
            # Each collision costs the emulator's ~2 s lock timeout, so few rounds; and it can
            # abort one transaction 5 times running, the client's default max_attempts.
            for _ in range(2):
                increment(client.transaction(max_attempts=20))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert counter.get().get("n") == 4


def test_named_database_is_kept_apart_from_default(client: firestore.Client) -> None:
    named = firestore.Client(project=PROJECT, database="bpium-gcal")
    named.document("meetings/m1").set({"db": "bpium-gcal"})

    assert not client.document("meetings/m1").get().exists
    assert named.document("meetings/m1").get().to_dict() == {"db": "bpium-gcal"}


def test_reset_empties_only_the_database_it_names(
    emulator: FirestoreEmulator, client: firestore.Client
) -> None:
    named = firestore.Client(project=PROJECT, database="bpium-gcal")
    client.document("meetings/m1").set({"a": 1})
    client.document("meetings/m1/notes/n1").set({"b": 2})
    named.document("meetings/m2").set({"c": 3})

    emulator.reset(PROJECT)

    assert list(client.collection("meetings").stream()) == []
    assert not client.document("meetings/m1/notes/n1").get().exists
    assert named.document("meetings/m2").get().exists


def test_stop_ends_the_whole_process_group_and_frees_the_port() -> None:
    emulator = firestore_emulator.start()
    pgid = os.getpgid(emulator.process.pid)
    assert pgid == emulator.process.pid

    emulator.stop()
    emulator.stop()  # idempotent

    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)  # no gcloud, no shell script, no java left in the group
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", emulator.port)) != 0
    assert not emulator.log_path.exists()


def test_start_fails_with_the_log_when_the_port_is_taken(tmp_path: Path) -> None:
    log = tmp_path / "emulator.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(RuntimeError, match=r"exited.*\n.*\[firestore\]"):
            firestore_emulator.start(port, log_path=str(log), timeout=30)

    assert "Address already in use" in log.read_text()


def test_a_free_port_taken_before_the_emulator_binds_it_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        drawn = [taken.getsockname()[1]]
        real = firestore_emulator.free_port
        monkeypatch.setattr(
            firestore_emulator, "free_port", lambda: drawn.pop() if drawn else real()
        )
        with firestore_emulator.start(timeout=60) as emulator:
            assert emulator.port != taken.getsockname()[1]
            assert firestore_emulator._answers_ok(f"{emulator.url}/")
