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


def free_ports(count: int, taken: Iterable[int] = ()) -> list[int]:
    """`count` distinct free ports, none of `taken` (each held until all are chosen, so the
    processes started together do not draw the same one)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port not in taken:
                ports.append(port)
        return ports
    finally:
        for s in held:
            s.close()


def start_function(
    name: str,
    env: Mapping[str, str],
    *,
    source: str = MAIN,
    port: int | None = None,
    log: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Starts serving entry point `name`; returns the process and its URL (not yet waited for).
    `log`: a file for the process's output (its JSON log lines); none is kept without it."""
    port = port or free_port()
    command = [
        FUNCTIONS_FRAMEWORK,
        *("--target", name, "--source", source),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]
    if log is None:
        process = subprocess.Popen(
            command, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    else:
        with log.open("ab") as out:  # the child keeps its own copy
            process = subprocess.Popen(command, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
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
    names: Iterable[str],
    env: Mapping[str, str],
    ports: Mapping[str, int] | None = None,
    *,
    logs: Path | None = None,
) -> Iterator[dict[str, str]]:
    """Each entry point in its own process, listening; stopped on the way out. `ports`
    fixes some ports (the workers' and the push receiver's, which the others must know
    before they start); `logs`: a folder for each process's output, `<name>.log`. The
    processes start together, then each is waited for."""
    fixed = dict(ports or {})
    names = list(names)
    drawn = iter(free_ports(sum(n not in fixed for n in names), fixed.values()))
    started: list[tuple[subprocess.Popen[bytes], str, str]] = []
    try:
        for name in names:
            log = logs / f"{name}.log" if logs is not None else None
            port = fixed[name] if name in fixed else next(drawn)
            process, url = start_function(name, env, port=port, log=log)
            started.append((process, name, url))
        for process, _, url in started:
            wait_listening(url, process)
        yield {name: url for _, name, url in started}
    finally:
        for process, _, _ in started:
            stop(process)
