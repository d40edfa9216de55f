"""Firestore adapter: the state instances share for the Google → Bpium direction.

- `calendars/{key}`: per calendar we watch, its sync token, its live channel (id, resource
  id, expiration) and the lease of the one sync that may run on it at a time.
- `channels/{channel id}`: the channels we hold, so a push names its calendar only through
  our own records (a push header never picks a calendar).
- `mirrors/{catalog}:{record}`: what the push path last wrote to each Bpium record, so a
  push repeated, late, or caused by our own write costs no Bpium write.

google-cloud-firestore; `FIRESTORE_EMULATOR_HOST` (the client's own variable) points it at
Google's emulator locally. Every Firestore error leaves as one of ours.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions

from .errors import BadRequest, ConfigError, UpstreamUnavailable

CALENDARS, CHANNELS, MIRRORS = "calendars", "channels", "mirrors"
TIMEOUT = 10.0
# Attempts of a contended transaction (the client's default is 5; a lease is short work).
TX_ATTEMPTS = 10


class StateUnavailable(UpstreamUnavailable):
    code = "firestore_unavailable"


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    try:
        yield
    except exceptions.PermissionDenied as exc:
        raise ConfigError(
            f"Firestore refused {what}: give this function's account roles/datastore.user",
            code="firestore_forbidden",
        ) from exc
    except exceptions.NotFound as exc:
        raise ConfigError(
            f"Firestore {what}: the database does not exist (FIRESTORE_DATABASE)",
            code="firestore_missing",
        ) from exc
    except exceptions.GoogleAPICallError as exc:
        raise StateUnavailable(f"Firestore {what}: {type(exc).__name__}") from exc
    except exceptions.RetryError as exc:
        raise StateUnavailable(f"Firestore {what}: retries ran out") from exc
    except ValueError as exc:
        # google-cloud-firestore raises ValueError when a transaction's attempts run out.
        if "attempts" not in str(exc):
            raise
        raise StateUnavailable(f"Firestore {what}: contended, attempts ran out") from exc


def calendar_key(calendar_id: str) -> str:
    """A document id for a calendar id (which may hold characters Firestore refuses)."""
    return hashlib.sha256(calendar_id.encode("utf-8")).hexdigest()[:32]


def mirror_key(catalog_id: str, record_id: str) -> str:
    return f"{catalog_id}:{record_id}".replace("/", "_")


@dataclass(frozen=True)
class SyncStart:
    token: str | None  # None: no token yet, or it was dropped: a full sync


class NotWatched(BadRequest):
    """A sync asked for a calendar we hold no state of: only our tasks name calendars."""

    code = "calendar_not_watched"


class StateStore:
    """Thread-safe (the Firestore client is); `client` builds it once, lazily."""

    def __init__(self, client: Callable[[], Any], clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self.clock = clock

    def _doc(self, collection: str, key: str) -> Any:
        return self._client().collection(collection).document(key)

    # -- channels -------------------------------------------------------------------------

    def channel(self, channel_id: str) -> dict[str, Any] | None:
        with _mapped("read of a channel"):
            snap = self._doc(CHANNELS, channel_id).get(timeout=TIMEOUT)
        return snap.to_dict() if snap.exists else None

    def calendar(self, calendar_id: str) -> dict[str, Any]:
        with _mapped("read of a calendar"):
            snap = self._doc(CALENDARS, calendar_key(calendar_id)).get(timeout=TIMEOUT)
        return (snap.to_dict() or {}) if snap.exists else {}

    def watched(self) -> list[dict[str, Any]]:
        """Every calendar's state document."""
        with _mapped("list of calendars"):
            docs = self._client().collection(CALENDARS).stream(timeout=TIMEOUT)
            return [d.to_dict() or {} for d in docs]

    def channels(self) -> list[dict[str, Any]]:
        with _mapped("list of channels"):
            docs = self._client().collection(CHANNELS).stream(timeout=TIMEOUT)
            return [{**(d.to_dict() or {}), "id": d.id} for d in docs]

    def open_channel(self, calendar_id: str, channel_id: str) -> None:
        """Records a channel before events.watch is called: its first message may come
        before the answer does."""
        data = {"calendarId": calendar_id, "state": "opening", "opened": self.clock()}
        with _mapped("write of a channel"):
            self._doc(CHANNELS, channel_id).set(data, timeout=TIMEOUT)

    def note_resource(self, channel_id: str, resource_id: str) -> None:
        """The resource id a push told us for a channel whose watch answer is not in yet."""
        with _mapped("write of a channel"):
            self._doc(CHANNELS, channel_id).set(
                {"resourceId": resource_id}, merge=True, timeout=TIMEOUT
            )

    def channel_opened(
        self, calendar_id: str, channel_id: str, resource_id: str, expiration: float
    ) -> dict[str, Any] | None:
        """The calendar's live channel is now this one; answers the one it replaced."""
        client = self._client()
        ref = self._doc(CALENDARS, calendar_key(calendar_id))
        channel = self._doc(CHANNELS, channel_id)

        def change(transaction: Any) -> dict[str, Any] | None:
            snap = ref.get(transaction=transaction)
            old = (snap.to_dict() or {}) if snap.exists else {}
            transaction.set(
                ref,
                {
                    "calendarId": calendar_id,
                    "channelId": channel_id,
                    "resourceId": resource_id,
                    "expiration": expiration,
                },
                merge=True,
            )
            transaction.set(
                channel,
                {"state": "live", "resourceId": resource_id, "expiration": expiration},
                merge=True,
            )
            previous = old.get("channelId")
            if previous and previous != channel_id:
                return {"id": previous, "resourceId": old.get("resourceId")}
            return None

        with _mapped("write of a calendar"):
            previous: dict[str, Any] | None = _transactional(client, change)
            return previous

    def drop_channel(self, channel_id: str) -> None:
        with _mapped("delete of a channel"):
            self._doc(CHANNELS, channel_id).delete(timeout=TIMEOUT)

    def forget_calendar(self, calendar_id: str) -> None:
        with _mapped("delete of a calendar"):
            self._doc(CALENDARS, calendar_key(calendar_id)).delete(timeout=TIMEOUT)

    # -- one sync of a calendar at a time --------------------------------------------------

    def begin_sync(self, calendar_id: str, holder: str, lease_seconds: float) -> SyncStart | None:
        """Takes the calendar's lease; None when another sync holds it, which is then told
        to run once more when it ends (nothing a push announced is left unread). NotWatched
        when the calendar has no state: nothing is created for it."""
        client = self._client()
        ref = self._doc(CALENDARS, calendar_key(calendar_id))
        now = self.clock()

        def take(transaction: Any) -> SyncStart | None:
            snap = ref.get(transaction=transaction)
            if not snap.exists:
                raise NotWatched("a task for a calendar we do not watch", field="calendarId")
            data = snap.to_dict() or {}
            if data.get("leaseHolder") not in (None, holder) and data.get("leaseUntil", 0) > now:
                transaction.set(ref, {"again": True}, merge=True)
                return None
            transaction.set(
                ref,
                {
                    "calendarId": calendar_id,
                    "leaseHolder": holder,
                    "leaseUntil": now + lease_seconds,
                    "again": False,
                },
                merge=True,
            )
            return SyncStart(data.get("syncToken"))

        with _mapped("lease of a calendar"):
            taken: SyncStart | None = _transactional(client, take)
            return taken

    def finish_sync(
        self, calendar_id: str, holder: str, read_from: str | None, token: str | None
    ) -> SyncStart | None:
        """Stores the new token, unless another sync stored one since ours was read (it
        then stays: a token never goes back). Answers where to read from once more when
        a push came meanwhile, else releases the lease and answers None."""
        client = self._client()
        ref = self._doc(CALENDARS, calendar_key(calendar_id))

        def finish(transaction: Any) -> SyncStart | None:
            snap = ref.get(transaction=transaction)
            data = (snap.to_dict() or {}) if snap.exists else {}
            update: dict[str, Any] = {}
            current = data.get("syncToken")
            if current == read_from and token:
                update["syncToken"] = current = token
            if data.get("again") and data.get("leaseHolder") == holder:
                update["again"] = False
                transaction.set(ref, update, merge=True)
                return SyncStart(current)
            if data.get("leaseHolder") == holder:
                update.update(leaseHolder=None, leaseUntil=0)
            if update:
                transaction.set(ref, update, merge=True)
            return None

        with _mapped("write of a sync token"):
            again: SyncStart | None = _transactional(client, finish)
            return again

    def drop_token(self, calendar_id: str, token: str) -> None:
        """Forgets a token Google no longer takes (410), unless it was replaced already."""
        client = self._client()
        ref = self._doc(CALENDARS, calendar_key(calendar_id))

        def drop(transaction: Any) -> None:
            snap = ref.get(transaction=transaction)
            if snap.exists and (snap.to_dict() or {}).get("syncToken") == token:
                transaction.set(ref, {"syncToken": None}, merge=True)

        with _mapped("write of a sync token"):
            _transactional(client, drop)

    def release(self, calendar_id: str, holder: str) -> None:
        """Gives the lease up after a failure (a retry of the task reads from the old token)."""
        client = self._client()
        ref = self._doc(CALENDARS, calendar_key(calendar_id))

        def release(transaction: Any) -> None:
            snap = ref.get(transaction=transaction)
            if snap.exists and (snap.to_dict() or {}).get("leaseHolder") == holder:
                transaction.set(ref, {"leaseHolder": None, "leaseUntil": 0}, merge=True)

        with _mapped("release of a lease"):
            _transactional(client, release)

    # -- what the push path wrote to Bpium --------------------------------------------------

    def mirrors(self, catalog_id: str, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not record_ids:
            return {}
        client = self._client()
        refs = [self._doc(MIRRORS, mirror_key(catalog_id, r)) for r in record_ids]
        by_key = dict(zip((ref.id for ref in refs), record_ids, strict=True))
        with _mapped("read of mirrors"):
            snaps = list(client.get_all(refs, timeout=TIMEOUT))
        return {by_key[s.id]: (s.to_dict() or {}) for s in snaps if s.exists}

    def save_mirrors(self, catalog_id: str, changes: Mapping[str, Mapping[str, Any]]) -> None:
        if not changes:
            return
        client = self._client()
        batch = client.batch()
        for record_id, data in changes.items():
            batch.set(self._doc(MIRRORS, mirror_key(catalog_id, record_id)), dict(data), merge=True)
        with _mapped("write of mirrors"):
            batch.commit(timeout=TIMEOUT)


def _transactional(client: Any, work: Callable[[Any], Any]) -> Any:
    """Runs `work(transaction)` in a Firestore transaction, retried on contention."""
    from google.cloud import firestore  # noqa: PLC0415 - loaded by the functions using it

    result: Any = firestore.transactional(work)(client.transaction(max_attempts=TX_ATTEMPTS))
    return result


def firestore_client(project: str | None, database: str) -> Any:
    """The Firestore client (the emulator's when FIRESTORE_EMULATOR_HOST is set)."""
    if not project:
        raise ConfigError("GCP_PROJECT: required for Firestore", code="config_invalid")
    from google.auth import exceptions as auth_exceptions  # noqa: PLC0415
    from google.cloud import firestore  # noqa: PLC0415 - loaded by the functions using it

    try:
        return firestore.Client(project=project, database=database)
    except auth_exceptions.DefaultCredentialsError as exc:
        raise ConfigError(
            "Firestore: no Google credentials (locally: FIRESTORE_EMULATOR_HOST)",
            code="firestore_credentials",
        ) from exc
