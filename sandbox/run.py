"""`make run`: the stand-ins, and every function at http://127.0.0.1:8080/<entry_point>.

Each function is served by functions-framework (`create_app`) from `functions/main.py`,
behind one threaded server; the Bpium stand-in's webhooks point at them, signed with the
secret string stored in the Secret Manager stand-in. Google's Firestore emulator holds the
shared state (sync tokens, channels) on port 8085; once the functions answer,
`watch_calendars` runs once, so the local calendar has a live push channel and a person's
change in the Google stand-in comes back to Bpium.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import functions_framework
import requests
from flask import Flask, jsonify
from werkzeug.serving import make_server

from sandbox import firestore_emulator
from sandbox.stack import (
    API_KEY,
    ENTRY_POINTS,
    FIRESTORE_DATABASE,
    PORTS,
    PROJECT,
    QUEUE,
    Stack,
    start_stack,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MAIN = str(Path(__file__).resolve().parent.parent / "functions" / "main.py")
ENV_FILE = Path(__file__).resolve().parent.parent / ".sandbox" / "local.env"
FIRESTORE_LOG = ENV_FILE.parent / "firestore-emulator.log"
FIRESTORE_PORT = PORTS["firestore"]
# Local defaults the user's environment may override: a person's move in Google reaches
# Bpium, and a push's sync starts a second after it (not PUSH_DEBOUNCE_SECONDS' 5).
LOCAL_DEFAULTS = {"FROM_GOOGLE": "start,end", "PUSH_DEBOUNCE_SECONDS": "1"}
# Cloud Scheduler's part (minutes): refresh_tokens as infra/ schedules it; watch_calendars
# hourly, as infra/ does, after the run at start.
WATCH_MINUTES = 60.0


def functions_app() -> WSGIApplication:
    """One WSGI app routing /<entry_point> to that function's functions-framework app.

    Like Cloud Functions, `/<entry_point>` itself reaches the function's `/` (no redirect).
    """
    index = Flask("index")

    @index.route("/", defaults={"path": ""})
    @index.route("/<path:path>")
    def _index(path: str) -> tuple[object, int]:
        return jsonify({"functions": [f"/{name}" for name in ENTRY_POINTS]}), 404

    mounts = {
        name: functions_framework.create_app(target=name, source=MAIN) for name in ENTRY_POINTS
    }

    def route(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        name, _, rest = environ.get("PATH_INFO", "").lstrip("/").partition("/")
        target = mounts.get(name)
        if target is None:
            return index(environ, start_response)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + name
        environ["PATH_INFO"] = "/" + rest
        return target(environ, start_response)

    return route


def banner(stack: Stack, base: str, firestore: str) -> str:
    lines = [
        "",
        "Bpium ↔ Google Calendar, running locally against the stand-ins:",
        *(f"  {name:<22} {base}/{name}" for name in ENTRY_POINTS),
        "",
        f"  Bpium stand-in         {stack.bpium_url}/api/v1  (login api@acme.example)",
        f"  Google stand-in        {stack.google_url}/calendar/v3/  (events: "
        f"{stack.google_url}/_sandbox/calendars/primary/events)",
        f"  Secret Manager         {stack.secrets_url}/v1/projects/local-project/secrets",
        f"  Cloud Tasks            {stack.tasks_url}/v2/{QUEUE}/tasks  (the webhooks' queue;"
        f" {stack.tasks_url}/_sandbox/tasks shows what waits)",
        f"  Firestore emulator     {firestore}  (sync tokens and push channels; database "
        f"{stack.env['FIRESTORE_DATABASE']})",
        f"  API key for scenarios  {API_KEY}",
        f"  FROM_GOOGLE={stack.env.get('FROM_GOOGLE', '')}"
        f"  PUSH_DEBOUNCE_SECONDS={stack.env.get('PUSH_DEBOUNCE_SECONDS', '')}",
        "",
        "refresh_tokens runs every 30 minutes and watch_calendars every hour (and once now),",
        "as Cloud Scheduler would run them.",
        "`make doctor LOCAL=1` checks this setup as it would a deployment.",
        "Try it: in another terminal run `make demo` — it creates, changes and deletes a",
        "meeting in the Bpium stand-in and shows the calendar event after each step, then",
        "answers, moves and cancels one in the Google stand-in and shows the Bpium record.",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def scheduler(url: str, minutes: float, stop: threading.Event) -> None:
    """Cloud Scheduler's part: POST to a scheduled function every `minutes`."""
    while not stop.wait(minutes * 60):
        try:
            requests.post(url, timeout=300)
        except requests.RequestException as exc:
            print(f"scheduler: {url} unreachable: {exc}", flush=True)


def first_watch(base: str, stop: threading.Event) -> None:
    """Once the functions answer: `watch_calendars`, so the calendar has a live channel
    (its first full sync queued) before anyone edits it; prints what it answered."""
    while not stop.is_set():
        try:
            requests.get(f"{base}/", timeout=3)
            break
        except requests.RequestException:
            stop.wait(0.1)
    try:
        answer = requests.post(f"{base}/watch_calendars", timeout=300)
        print(f"watch_calendars: {answer.status_code} {answer.text.strip()}", flush=True)
    except requests.RequestException as exc:
        print(f"watch_calendars: unreachable: {exc}", flush=True)


def start_firestore() -> firestore_emulator.FirestoreEmulator:
    """The emulator on its fixed port, empty; exits with a hint when it cannot start.

    A port already taken is refused up front: an emulator left over from an earlier run
    would answer for the new one, with channels and sync tokens of stand-ins long gone."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", FIRESTORE_PORT)) == 0:
            print(
                f"Port {FIRESTORE_PORT} is taken (another `make run`, or an emulator left "
                "running?): stop it first.",
                file=sys.stderr,
            )
            sys.exit(1)
    FIRESTORE_LOG.parent.mkdir(exist_ok=True)
    try:
        emulator = firestore_emulator.start(FIRESTORE_PORT, log_path=str(FIRESTORE_LOG))
    except (OSError, RuntimeError) as exc:
        print(
            f"The Firestore emulator did not start on port {FIRESTORE_PORT}: {exc}\n"
            "It comes with the Google Cloud CLI (`gcloud emulators firestore start`, Java 11+).",
            file=sys.stderr,
        )
        sys.exit(1)
    try:
        emulator.reset(PROJECT, FIRESTORE_DATABASE)
    except BaseException:
        emulator.stop()
        raise
    return emulator


def _stop_on_sigterm() -> None:
    """SIGTERM and SIGHUP end the run as Ctrl-C does, so the emulator is stopped too."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=PORTS["functions"])
    parser.add_argument(
        "--refresh-minutes", type=float, default=30.0, help="refresh_tokens schedule"
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # our JSON log lines stay readable
    _stop_on_sigterm()
    base = f"http://127.0.0.1:{args.port}"
    firestore: firestore_emulator.FirestoreEmulator | None = None
    stack: Stack | None = None
    server = None
    stop = threading.Event()
    try:
        firestore = start_firestore()
        stack = start_stack(
            PORTS["google"],
            PORTS["bpium"],
            PORTS["secrets"],
            tasks_port=PORTS["tasks"],
            worker_url=f"{base}/sync_meeting",
            firestore_host=firestore.host,
            functions_url=base,
        )
        stack.env.update({k: os.environ.get(k, v) for k, v in LOCAL_DEFAULTS.items()})
        os.environ.update(stack.env)
        # For `make doctor LOCAL=1` and other tools in another terminal.
        ENV_FILE.parent.mkdir(exist_ok=True)
        ENV_FILE.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in stack.env.items()))
        stack.subscribe({name: f"{base}/{name}" for name in ENTRY_POINTS})
        server = make_server("127.0.0.1", args.port, functions_app(), threaded=True)
        print(banner(stack, base, firestore.host), flush=True)
        for name, minutes in (
            ("refresh_tokens", args.refresh_minutes),
            ("watch_calendars", WATCH_MINUTES),
        ):
            threading.Thread(
                target=scheduler, args=(f"{base}/{name}", minutes, stop), daemon=True
            ).start()
        threading.Thread(target=first_watch, args=(base, stop), daemon=True).start()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if server is not None:
            server.server_close()
        if stack is not None:
            stack.stop()
        if firestore is not None:
            firestore.stop()


if __name__ == "__main__":
    main()
