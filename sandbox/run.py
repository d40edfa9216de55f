"""`make run`: the stand-ins, and every function at http://127.0.0.1:8080/<entry_point>.

Each function is served by functions-framework (`create_app`) from `functions/main.py`,
behind one threaded server; the Bpium stand-in's webhooks point at them, signed with the
secret string stored in the Secret Manager stand-in.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import functions_framework
import requests
from flask import Flask, jsonify
from werkzeug.serving import make_server

from sandbox.stack import API_KEY, ENTRY_POINTS, PORTS, QUEUE, Stack, start_stack

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MAIN = str(Path(__file__).resolve().parent.parent / "functions" / "main.py")
ENV_FILE = Path(__file__).resolve().parent.parent / ".sandbox" / "local.env"


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


def banner(stack: Stack, base: str) -> str:
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
        f"  API key for scenarios  {API_KEY}",
        "",
        "refresh_tokens runs every 30 minutes, as Cloud Scheduler would run it.",
        "`make doctor LOCAL=1` checks this setup as it would a deployment.",
        "Try it: in another terminal run `make demo` — it creates, changes and deletes a",
        "meeting in the Bpium stand-in and shows the calendar event after each step.",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def scheduler(url: str, minutes: float, stop: threading.Event) -> None:
    """Cloud Scheduler's part: POST to `refresh_tokens` every `minutes`."""
    while not stop.wait(minutes * 60):
        try:
            requests.post(url, timeout=60)
        except requests.RequestException as exc:
            print(f"scheduler: {url} unreachable: {exc}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=PORTS["functions"])
    parser.add_argument(
        "--refresh-minutes", type=float, default=30.0, help="refresh_tokens schedule"
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # our JSON log lines stay readable
    base = f"http://127.0.0.1:{args.port}"
    stack = start_stack(
        PORTS["google"],
        PORTS["bpium"],
        PORTS["secrets"],
        tasks_port=PORTS["tasks"],
        worker_url=f"{base}/sync_meeting",
    )
    os.environ.update(stack.env)
    # For `make doctor LOCAL=1` and other tools in another terminal.
    ENV_FILE.parent.mkdir(exist_ok=True)
    ENV_FILE.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in stack.env.items()))
    stack.subscribe({name: f"{base}/{name}" for name in ENTRY_POINTS})
    server = make_server("127.0.0.1", args.port, functions_app(), threaded=True)
    print(banner(stack, base), flush=True)
    stop = threading.Event()
    threading.Thread(
        target=scheduler, args=(f"{base}/refresh_tokens", args.refresh_minutes, stop), daemon=True
    ).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        stack.stop()


if __name__ == "__main__":
    main()
