"""`make secrets`: put the Bpium secrets into the configured backend, typed at hidden prompts.

Values never pass through a command line (so never into shell history), nor through
Terraform (so never into its state). The webhook secret string and the API key can be
generated; a generated value is shown once, to be pasted into Bpium. The Google secrets are
written by `make authorize`.

    SECRETS_BACKEND=secret-manager GCP_PROJECT=my-project make secrets [ONLY=api-key]
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence

from ..errors import AppError
from ..secret_store import (
    API_KEY,
    BPIUM_CREDENTIALS,
    BPIUM_WEBHOOK_SECRET,
    GOOGLE_CHANNEL_TOKEN,
    SecretStore,
)
from ..services import secret_source
from ..settings import Settings

MIN_LENGTH = 16
NAMES = (BPIUM_CREDENTIALS, BPIUM_WEBHOOK_SECRET, API_KEY, GOOGLE_CHANNEL_TOKEN)


def run(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    ask: Callable[[str], str] = input,
    ask_hidden: Callable[[str], str] = getpass.getpass,
    say: Callable[[str], None] = print,
) -> int:
    parser = argparse.ArgumentParser(prog="make secrets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=NAMES, action="append", help="only this secret")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(environ, require_bpium=False)
        store = SecretStore(secret_source(settings))
        for name in args.only or NAMES:
            if name == BPIUM_CREDENTIALS:
                login = ask("Bpium API user's login (e-mail): ").strip()
                password = ask_hidden("Its password (hidden): ")
                if not login or not password:
                    say(f"{name}: login and password are both needed; skipped")
                    continue
                value = json.dumps({"login": login, "password": password})
            elif name == GOOGLE_CHANNEL_TOKEN:
                # Only Google (told by watch_calendars) and our functions use it: no one types it.
                value = secrets.token_urlsafe(32)
                say(f"{name}: generated (nobody needs to see it)")
            else:
                typed = ask_hidden(f"{name} (hidden; empty = generate one): ").strip()
                if typed and len(typed) < MIN_LENGTH:
                    say(f"{name}: at least {MIN_LENGTH} characters, please; skipped")
                    continue
                value = typed or secrets.token_urlsafe(32)
                if not typed:
                    where = (
                        "«Секретная строка» of the three webhooks"
                        if name == BPIUM_WEBHOOK_SECRET
                        else "X-Api-Key header of the «Веб-запрос» calls"
                    )
                    say(f"{name}: generated; paste it into the {where} (shown once):\n  {value}")
            version = store.put(name, value)
            say(f"{name}: stored (version {version}) in the {settings.secrets_backend} backend")
    except AppError as exc:
        say(f"secrets failed: {exc}")
        return 1
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
