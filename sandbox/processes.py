"""functions-framework processes (gunicorn with threads, as in production) for the
end-to-end tests and the bench."""

from __future__ import annotations

import random
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


# Ports for servers started in another process: below Linux's ephemeral range (32768 up,
# /proc/sys/net/ipv4/ip_local_port_range), which outgoing connections draw their local
# port from. A port asked of the kernel (bind to 0) comes from that range, and in the
# seconds before a slow server (the Firestore emulator's JVM) binds it, a client socket
# may take it ("Address already in use").
SERVER_PORTS = range(20000, 32768)
_draw = random.Random()  # spreading ports, not secrets


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def free_ports(count: int, taken: Iterable[int] = ()) -> list[int]:
    """`count` distinct ports that are free now, none of `taken`, drawn at random from
    SERVER_PORTS (so parallel test processes rarely draw the same one)."""
    ports: list[int] = []
    avoid = set(taken)
    for _ in range(count * 200):
        if len(ports) == count:
            break
        port = _draw.choice(SERVER_PORTS)
        if port in avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        avoid.add(port)
        ports.append(port)
    if len(ports) < count:
        raise RuntimeError(f"no {count} free ports in {SERVER_PORTS}")
    return ports


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
