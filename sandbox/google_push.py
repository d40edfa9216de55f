"""Push notifications of the Calendar stand-in: events.watch, channels.stop and delivery.

A watch opens a channel on a calendar's events and answers the Channel resource with the
expiration granted; its `sync` message goes out at once, and every later change to an event
of the calendar (any write: API, batch part, `add_event`, `person_edit`, `person_delete`,
calendars.clear, a move in or out) sends an `exists` message. Messages are POSTed with an
empty body and the `X-Goog-*` headers by one background thread, never inside the request that
made the change; they may reach the receiver before the answer to that request (or to the
watch) does. A stopped or expired channel is told nothing more, queued retries included.

Sources: the push guide, https://developers.google.com/calendar/api/guides/push ("guide"),
and the events.watch / channels.stop references,
https://developers.google.com/calendar/api/v3/reference/events/watch and
https://developers.google.com/calendar/api/v3/reference/channels/stop. What they leave open
is read harshly (commented where it is done) or is a switch of `GoogleStandIn`.

`PushHub` holds the channels, the delivery queue and the log; `PushApi` is the API mixin
(handlers, the test API and the admin routes).
"""

from __future__ import annotations

import copy
import heapq
import itertools
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import requests
from flask import Flask, Response, request

from sandbox import common
from sandbox.google_store import StandInBase
from sandbox.google_wire import API_PREFIX, ApiError, admin_body, bad, json_response, random_token

# params.ttl: "The time-to-live in seconds for the notification channel. Default is 604800
# seconds." (events.watch reference)
DEFAULT_TTL_SECONDS = 604_800
# No maximum is documented; a longer ttl was seen cut to 30 days
# (stackoverflow.com/q/64986662, stackoverflow.com/a/65001852).
MAX_TTL_SECONDS = 30 * 86_400
# The guide: channel id up to 64 characters of [A-Za-z0-9-_+/=] (as the brief quotes it).
CHANNEL_ID_RE = re.compile(r"[A-Za-z0-9\-_+/=]{1,64}")
MAX_TOKEN_CHARS = 256  # the guide: token "Maximum length: 256 characters"
CHANNEL_TYPES = ("web_hook", "webhook")  # discovery doc, Channel.type
# The guide, "Respond to notifications": these statuses are success; 500, 502, 503 and 504
# are retried with exponential backoff; every other status is a message failure.
SUCCESS_STATUSES = frozenset({102, 200, 201, 202, 204})
RETRIED_STATUSES = frozenset({500, 502, 503, 504})
# No schedule is documented: 1 s doubling, six attempts in all (about half a minute), then
# the message is lost: the harsh reading. Scaled by `time_scale`.
RETRY_BASE_SECONDS = 1.0
MAX_ATTEMPTS = 6
DELIVERY_TIMEOUT = 10.0  # undocumented; a receiver slower than this failed the attempt
# X-Goog-Message-Number: "Message numbers increase for each subsequent message on the
# channel, but they are not sequential" (guide): each step is 1..MAX_NUMBER_STEP.
MAX_NUMBER_STEP = 3
DUPLICATE_SHARE = 0.5  # with `push_duplicate`, the share of messages sent twice
# The user agent Google's push deliveries carry
# (https://developers.google.com/search/docs/crawling-indexing/apis-user-agent).
USER_AGENT = "APIs-Google (+https://developers.google.com/webmasters/APIs-Google.html)"
PROJECT = "sandbox"  # the one Cloud project every client of this stand-in belongs to


class PushSettings(Protocol):
    """What the hub reads from the stand-in on every message."""

    clock: Callable[[], float]
    push_duplicate: bool
    push_drop_rate: float
    push_delay: float
    time_scale: float


@dataclass
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str  # resolved (never "primary")
    address: str
    token: str | None
    expiration_ms: int
    event_types: frozenset[str] | None  # events.watch `eventTypes`; None: all
    number: int = 1  # of the last message; the sync message is 1 (guide)
    stopped: bool = False

    def live(self, now: float) -> bool:
        return not self.stopped and now * 1000 < self.expiration_ms

    def resource(self) -> dict[str, Any]:
        """The Channel a watch answers (events.watch reference, "Response")."""
        answer: dict[str, Any] = {
            "kind": "api#channel",
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
        }
        if self.token is not None:
            answer["token"] = self.token
        answer["expiration"] = str(self.expiration_ms)  # int64: a string (discovery doc)
        return answer

    def summary(self) -> dict[str, Any]:
        return {**self.resource(), "calendarId": self.calendar_id, "address": self.address}


@dataclass
class Message:
    channel: Channel
    state: str  # "sync" or "exists"
    number: int
    generation: int
    duplicate: bool = False  # the second copy of a duplicated message
    attempt: int = 0


class PushHub:
    """Channels, the queue of messages to deliver and the log of attempts; thread-safe.

    One worker thread delivers, started when a message is queued and gone when none is
    left. Never calls back into the stand-in, so the stand-in may call it under its lock.
    """

    def __init__(self, settings: PushSettings, seed: int = 20261130) -> None:
        self._settings = settings
        self._cv = threading.Condition()
        self._random = random.Random(seed)
        self._channels: dict[str, Channel] = {}
        self._taken: set[str] = set()  # every channel id opened since the last reset
        self._resource_ids: dict[str, str] = {}
        self._queue: list[tuple[float, int, Message]] = []
        self._order = itertools.count()
        self._busy = False
        self._worker: threading.Thread | None = None
        self._generation = 0
        self._log: list[dict[str, Any]] = []

    # -- channels

    def resource_id(self, calendar_id: str) -> str:
        """The watched resource's id: "stable across different API versions" (discovery
        doc, Channel.resourceId), so one per calendar, shared by its channels."""
        with self._cv:
            return self._resource_ids.setdefault(calendar_id, random_token()[:27])

    def open(self, channel: Channel, *, reusable_ids: bool) -> None:
        """Keeps the channel and queues its `sync` message; 400 for an id in use."""
        now = self._settings.clock()
        with self._cv:
            held = self._channels.get(channel.id)
            in_use = held is not None and held.live(now)
            if in_use or (channel.id in self._taken and not reusable_ids):
                # 400 channelIdNotUnique, as clients handle it (e.g. KeepSoftwareSimple/
                # compass-calendar); the guide: an id unique "within your project".
                raise ApiError(
                    400, "channelIdNotUnique", f"Channel id {channel.id} not unique", domain="push"
                )
            self._channels[channel.id] = channel
            self._taken.add(channel.id)
            # "After creating a new notification channel ... the API sends a sync message"
            # (guide), numbered 1.
            self._queue_message(channel, "sync", 1)

    def stop(self, channel_id: str, resource_id: str) -> bool:
        """Stops a live channel named by both ids; False when there is none."""
        now = self._settings.clock()
        with self._cv:
            channel = self._channels.get(channel_id)
            if channel is None or channel.resource_id != resource_id or not channel.live(now):
                return False
            channel.stopped = True
            del self._channels[channel_id]
            self._forget(channel)
            return True

    def expire(self, channel_id: str) -> None:
        with self._cv:
            channel = self._channels.get(channel_id)
            if channel is None:
                raise KeyError(channel_id)
            channel.expiration_ms = min(channel.expiration_ms, int(self._settings.clock() * 1000))
            self._forget(channel)

    def _forget(self, channel: Channel) -> None:
        """Under the lock: the channel's queued messages and retries go; none is sent."""
        self._queue = [entry for entry in self._queue if entry[2].channel is not channel]
        heapq.heapify(self._queue)
        self._cv.notify_all()

    def live_channels(self) -> list[Channel]:
        now = self._settings.clock()
        with self._cv:
            return [copy.copy(c) for c in self._channels.values() if c.live(now)]

    def event_changed(self, calendar_id: str, event_type: str) -> None:
        """An event of the calendar changed: an `exists` message to each live channel."""
        now = self._settings.clock()
        with self._cv:
            for channel in self._channels.values():
                if channel.calendar_id != calendar_id or not channel.live(now):
                    continue
                if channel.event_types is not None and event_type not in channel.event_types:
                    continue
                channel.number += self._random.randint(1, MAX_NUMBER_STEP)
                self._queue_message(channel, "exists", channel.number)

    # -- delivery

    def _queue_message(self, channel: Channel, state: str, number: int) -> None:
        """Under the lock. Drop and duplicate are drawn here, in the order of the changes,
        so a seeded run repeats whatever the threads do."""
        settings = self._settings
        message = Message(channel, state, number, self._generation)
        # "Notifications are not 100% reliable. Expect a small percentage of messages to
        # get dropped under normal working conditions." (guide)
        if settings.push_drop_rate > 0 and self._random.random() < settings.push_drop_rate:
            self._record(message, status=None, dropped=True)
            return
        due = time.monotonic() + settings.push_delay
        self._push(due, message)
        # Duplicates: the guide promises neither once nor at-most-once; harsh reading.
        if settings.push_duplicate and self._random.random() < DUPLICATE_SHARE:
            twin = Message(channel, state, number, self._generation, duplicate=True)
            self._push(due, twin)

    def _push(self, due: float, message: Message) -> None:
        heapq.heappush(self._queue, (due, next(self._order), message))
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="google-push", daemon=True)
            self._worker.start()
        self._cv.notify_all()

    def _run(self) -> None:
        session = requests.Session()
        session.trust_env = False  # receivers are local; no proxy from the environment
        try:
            while (message := self._next_message()) is not None:
                status, error = self._deliver(session, message)
                with self._cv:
                    self._busy = False
                    if message.generation == self._generation:
                        self._record(message, status=status, error=error)
                        if status in RETRIED_STATUSES and message.attempt < MAX_ATTEMPTS:
                            pause = RETRY_BASE_SECONDS * 2 ** (message.attempt - 1)
                            pause *= self._settings.time_scale
                            heapq.heappush(
                                self._queue, (time.monotonic() + pause, next(self._order), message)
                            )
                    self._cv.notify_all()
        finally:
            session.close()

    def _next_message(self) -> Message | None:
        """The next message due to a live channel (waiting for it); None when none is left,
        and then the worker is gone."""
        with self._cv:
            while True:
                if not self._queue:
                    self._worker = None
                    self._cv.notify_all()
                    return None
                due, _, message = self._queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                heapq.heappop(self._queue)
                stale = message.generation != self._generation
                if stale or not message.channel.live(self._settings.clock()):
                    continue  # reset, stopped or expired since: never sent
                message.attempt += 1
                self._busy = True
                return message

    @staticmethod
    def _deliver(session: requests.Session, message: Message) -> tuple[int | None, str | None]:
        channel = message.channel
        # The guide, "Understand the notification message format": a POST with these
        # headers and no body; the token only when the watch gave one.
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": formatdate(channel.expiration_ms / 1000, usegmt=True),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Resource-State": message.state,
            "X-Goog-Message-Number": str(message.number),
            "User-Agent": USER_AGENT,
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        try:
            answer = session.post(
                channel.address,
                data=b"",
                headers=headers,
                timeout=DELIVERY_TIMEOUT,
                allow_redirects=False,  # a redirect is not among the success statuses
            )
        except requests.RequestException as exc:
            # No status at all is no retried status: a failure, not retried (harsh reading).
            return None, f"{type(exc).__name__}: {exc}"
        return answer.status_code, None

    def _record(
        self,
        message: Message,
        *,
        status: int | None,
        dropped: bool = False,
        error: str | None = None,
    ) -> None:
        self._log.append(
            {
                "channel": message.channel.id,
                "state": message.state,
                "number": message.number,
                "attempt": message.attempt,
                "status": status,
                "dropped": dropped,
                "duplicate": message.duplicate,
                "error": error,
            }
        )

    # -- tests

    def log(self) -> list[dict[str, Any]]:
        with self._cv:
            return copy.deepcopy(self._log)

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or being delivered (retries included)."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._queue and not self._busy, timeout)

    def reset(self) -> None:
        """No channels, nothing queued, an empty log; a delivery under way is forgotten."""
        with self._cv:
            self._generation += 1
            for channel in self._channels.values():
                channel.stopped = True
            self._channels.clear()
            self._taken.clear()
            self._resource_ids.clear()
            self._queue.clear()
            self._log.clear()
            self._cv.notify_all()


class PushApi(StandInBase):
    """events.watch and channels.stop, with the test API over `PushHub`."""

    push_require_https: bool
    channel_ttl_seconds: float | None
    push_reusable_ids: bool

    # -- handlers

    def _watch(self, calendar_id: str) -> Response:
        self._authorize("events", "watch")
        params = self._query("events", "watch")
        body = self._body("Channel", "resource")
        channel_id, address, token = self._check_channel(body)
        now = self.clock()
        expiration_ms = int((now + self._granted_ttl(body, now)) * 1000)
        types = params.get("eventTypes")
        with self._lock:
            # "A watch request won't be successful unless the current user owns or has
            # permission to access this resource" (guide): the access events.list needs.
            calendar = self._calendar(calendar_id)
            # The guide's example: .../calendar/v3/calendars/my_calendar@gmail.com/events
            uri = f"{request.host_url.rstrip('/')}{API_PREFIX}/calendars/"
            uri += f"{quote(calendar_id, safe='@')}/events"
            channel = Channel(
                channel_id,
                self._push.resource_id(calendar.id),
                uri,
                calendar.id,
                address,
                token,
                expiration_ms,
                frozenset(types) if types else None,
            )
            self._push.open(channel, reusable_ids=self.push_reusable_ids)
            return json_response(channel.resource())

    def _check_channel(self, body: dict[str, Any]) -> tuple[str, str, str | None]:
        """(id, address, token) of a watch's Channel, as Google checks them."""
        channel_id = body.get("id")
        if not channel_id:
            raise ApiError(400, "required", "Required: channel.id", location="id")
        if not CHANNEL_ID_RE.fullmatch(channel_id):
            raise bad(f"Invalid channel id: {channel_id}")
        kind = body.get("type")
        if kind not in CHANNEL_TYPES:
            # As clients see it (e.g. the push.* reasons handled in gcsa's error mapping).
            raise ApiError(
                400, "push.channelTypeNotSupported", f"Channel type '{kind}' is not supported."
            )
        address = body.get("address")
        if not address:
            raise ApiError(400, "required", "Required: channel.address", location="address")
        parts = urlsplit(address)
        https = parts.scheme.lower() == "https"
        if self.push_require_https and not https:
            # "WebHook callback must be HTTPS: <address>" (stackoverflow.com/q/43484709).
            raise ApiError(
                400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}"
            )
        if not (https or parts.scheme.lower() == "http") or not parts.hostname:
            raise bad(f"Invalid channel address: {address}")
        token = body.get("token")
        if token is not None and len(token) > MAX_TOKEN_CHARS:
            raise bad(f"Channel token longer than {MAX_TOKEN_CHARS} characters.")
        return channel_id, address, token

    def _granted_ttl(self, body: dict[str, Any], now: float) -> float:
        """Seconds the channel lives: `params.ttl` and `expiration` (the earlier holds),
        default a week, at most `MAX_TTL_SECONDS` or `channel_ttl_seconds`."""
        wanted = [float(DEFAULT_TTL_SECONDS)]
        ttl = (body.get("params") or {}).get("ttl")
        if ttl is not None:
            if not re.fullmatch(r"\d+", ttl) or int(ttl) < 1:
                # Documents silent on a bad ttl: refused (harsh reading).
                raise bad(f"Invalid value for params.ttl: {ttl}")
            wanted = [float(ttl)]
        if body.get("expiration") is not None:
            left = int(body["expiration"]) / 1000 - now
            if left <= 0:
                # Documents silent on a past expiration: refused (harsh reading).
                raise bad("The channel expiration must be in the future.")
            wanted.append(left)
        cap = MAX_TTL_SECONDS if self.channel_ttl_seconds is None else self.channel_ttl_seconds
        return min(*wanted, cap)

    def _channels_stop(self) -> Response:
        self._authorize("channels", "stop")
        self._query("channels", "stop")
        body = self._body("Channel", "resource")
        for name in ("id", "resourceId"):
            if not body.get(name):
                # The reference needs both; a missing one is refused (harsh reading).
                raise ApiError(400, "required", f"Required: channel.{name}", location=name)
        if not self._push.stop(body["id"], body["resourceId"]):
            # Unknown, stopped, expired or another resource's: 404 notFound, worded as
            # googleapis/google-api-nodejs-client#627 shows it.
            raise ApiError(
                404, "notFound", f"Channel '{body['id']}' not found for project '{PROJECT}'"
            )
        return Response(status=204)  # channels.stop reference: an empty response body

    # -- test API

    def channels(self) -> list[dict[str, Any]]:
        """The live channels: their Channel resource plus `calendarId` and `address`."""
        return [channel.summary() for channel in self._push.live_channels()]

    @property
    def push_log(self) -> list[dict[str, Any]]:
        """Every delivery attempt, oldest first: `channel`, `state`, `number`, `attempt`,
        `status` (None: no answer, see `error`) and `duplicate`; a message dropped by
        `push_drop_rate` is one entry with `dropped` true, attempt 0 and no status."""
        return self._push.log()

    def wait_pushes_idle(self, timeout: float = 5.0) -> bool:
        """Waits until no message is queued or under way; False if `timeout` passed first."""
        return self._push.wait_idle(timeout)

    def expire_channel(self, channel_id: str) -> None:
        """The channel expires now (by `clock`); KeyError for an unknown id."""
        self._push.expire(channel_id)

    def _install_push_admin(self, app: Flask) -> None:
        prefix = common.ADMIN_PREFIX

        @app.get(prefix + "channels")
        def _push_channels() -> Response:
            return json_response({"items": self.channels()})

        @app.get(prefix + "push-log")
        def _push_log_items() -> Response:
            return json_response({"items": self.push_log})

        @app.post(prefix + "channels/<channel_id>/expire")
        def _push_expire(channel_id: str) -> Response:
            try:
                self.expire_channel(channel_id)
            except KeyError:
                raise ApiError(404, "notFound", f"Channel '{channel_id}' not found") from None
            return json_response({})

        @app.post(prefix + "pushes/wait")
        def _push_wait() -> Response:
            timeout = float(admin_body().get("timeout", 5.0))
            return json_response({"idle": self.wait_pushes_idle(timeout)})
