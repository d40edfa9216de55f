"""Google's own Firestore emulator (`gcloud emulators firestore start`) as a process for
`make run` and the tests: start it on a free port, point the real client at it through
`FIRESTORE_EMULATOR_HOST`, empty it between tests, stop it with its java child.

Found on this machine (gcloud 528, Java 17, google-cloud-firestore 2.34):
- It answers `GET /` with 200 "Ok" 2.5-4 s after launch; SIGTERM ends it in ~1.5 s.
- Named databases work without being created: `firestore.Client(project=..,
  database="bpium-gcal")` reads, writes and runs transactions; each database is kept apart
  from "(default)", and `reset` empties only the one it names.
- Locking is pessimistic: two transactions that read one document and both commit wait on
  each other until the emulator aborts one ("Transaction lock timeout", 409 ABORTED) after
  about 2 s; the client then retries it. Contended tests cost ~2 s per collision, and the
  emulator may abort one transaction 5 times running (about 1 in 100 contended increments
  here), which exhausts the client's default `max_attempts` and raises ValueError.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from sandbox.processes import free_port

GCLOUD = "gcloud"
# The emulator is local: an http_proxy in the environment must not see these calls.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(pgid, signum)


class FirestoreEmulator:
    """One running emulator; `stop()` (or leaving the `with` block) ends its process group."""

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, log_path: Path, *, own_log: bool
    ) -> None:
        self.process = process
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.url = f"http://{self.host}"
        self.env = {"FIRESTORE_EMULATOR_HOST": self.host}
        self.log_path = log_path
        self._own_log = own_log
        self._stopped = False

    def reset(self, project: str, database: str = "(default)") -> None:
        """Deletes every document of one database."""
        # Source: https://firebase.google.com/docs/emulator-suite/connect_firestore#clear_your_database_between_tests
        request = urllib.request.Request(
            f"{self.url}/emulator/v1/projects/{project}/databases/{database}/documents",
            method="DELETE",
        )
        try:
            with _HTTP.open(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        if status != 200:
            raise RuntimeError(f"emulator reset of {project}/{database} answered {status}")

    def stop(self) -> None:
        """SIGTERM to the whole group (gcloud, its shell script, java), SIGKILL after 10 s."""
        if self._stopped:
            return
        self._stopped = True
        pgid = self.process.pid  # start_new_session made gcloud the group leader
        _signal_group(pgid, signal.SIGTERM)
        if not self._wait_group_gone(pgid, 10):
            _signal_group(pgid, signal.SIGKILL)
            self._wait_group_gone(pgid, 10)
        self.process.wait(timeout=10)
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def _wait_group_gone(self, pgid: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.process.poll()  # reaps gcloud, whose zombie would keep the group alive
            if not _group_alive(pgid):
                return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> FirestoreEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _answers_ok(url: str) -> bool:
    try:
        with _HTTP.open(url, timeout=1) as response:
            return bool(response.status == 200 and response.read().strip() == b"Ok")
    except (OSError, ValueError):
        return False


def start(
    port: int = 0, *, log_path: str | None = None, timeout: float = 90.0
) -> FirestoreEmulator:
    """Launches the emulator on 127.0.0.1 and waits until it answers. `port` 0: a free one,
    and another if something takes that one before the emulator binds it (up to 3 tries)."""
    for _ in range(2):
        try:
            return _start(port or free_port(), log_path, timeout)
        except PortTaken:
            if port:
                raise
    return _start(free_port(), log_path, timeout)


class PortTaken(RuntimeError):
    """The emulator exited because its port was in use."""


def _start(port: int, log_path: str | None, timeout: float) -> FirestoreEmulator:
    own_log = log_path is None
    if log_path is None:
        fd, log_path = tempfile.mkstemp(prefix="firestore-emulator-", suffix=".log")
        os.close(fd)
    path = Path(log_path)
    with path.open("wb") as log:
        process = subprocess.Popen(
            [GCLOUD, "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    emulator = FirestoreEmulator(process, port, path, own_log=own_log)
    deadline = time.monotonic() + timeout
    try:
        while not _answers_ok(f"{emulator.url}/"):
            if process.poll() is not None or time.monotonic() > deadline:
                code = process.poll()
                why = "timed out" if code is None else f"exited with {code}"
                tail = _tail(path)
                taken = code is not None and "Address already in use" in _tail(path, 10_000)
                # Kept for whoever reads the error, unless another port is tried next.
                emulator._own_log = own_log and taken
                error = PortTaken if taken else RuntimeError
                raise error(f"Firestore emulator {why} on {emulator.host}; {path} ends:\n{tail}")
            time.sleep(0.1)
    except BaseException:  # a timeout, or Ctrl-C while it starts: no orphan java
        emulator.stop()
        raise
    return emulator
