"""functions-framework processes (gunicorn with threads, as in production) for the
end-to-end tests and the bench."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "functions" / "main.py")
FUNCTIONS_FRAMEWORK = str(Path(sys.executable).parent / "functions-framework")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_function(
    name: str, env: Mapping[str, str], *, source: str = MAIN, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Starts serving entry point `name`; returns the process and its URL (not yet waited for)."""
    port = port or free_port()
    process = subprocess.Popen(
        [
            FUNCTIONS_FRAMEWORK,
            "--target",
            name,
            "--source",
            source,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_listening(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    port = int(url.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"functions-framework exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {url}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def functions_served(
    names: Iterable[str], env: Mapping[str, str], ports: Mapping[str, int] | None = None
) -> Iterator[dict[str, str]]:
    """Each entry point in its own process, listening; stopped on the way out. `ports`
    fixes some ports (the worker's, which the others must know before they start)."""
    started: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    try:
        for name in names:
            process, url = start_function(name, env, port=(ports or {}).get(name))
            started.append(process)
            wait_listening(url, process)
            urls[name] = url
        yield urls
    finally:
        for process in started:
            stop(process)
