"""Our Calendar event ids: deterministic, and reversible to the record they belong to.

Pure, standard library only. Google guarantees only the `id` of a deleted event (a
cancelled item in an incremental sync has nothing else), so the id itself names its record.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

# Calendar's rule for client ids: base32hex characters (a-v, 0-9), 5 to 1024 of them.
EVENT_ID_PATTERN = re.compile(r"^[a-v0-9]{5,1024}$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")
EVENT_ID_SCHEME = "bpium1"
MAX_GENERATION = 99


@dataclass(frozen=True)
class EventRef:
    """What one of our event ids says: the record, and which of its events (0 = the first)."""

    catalog_id: str
    record_id: str
    generation: int = 0


def event_id_for(catalog_id: str, record_id: str, generation: int = 0) -> str:
    """The deterministic Calendar id of a record's event, reversible by `decode_event_id`.

    base32hex of `bpium1/{catalog}/{record}[/{generation}]`, lower case: Calendar's id
    alphabet is exactly base32hex (a-v, 0-9). Google guarantees only the id of a deleted
    event, so the id itself must name its record. A new generation replaces an event that
    Google refuses to revive (one a person deleted in the Calendar UI).
    """
    text = f"{EVENT_ID_SCHEME}/{catalog_id}/{record_id}"
    if generation:
        text += f"/{generation}"
    return base64.b32hexencode(text.encode("utf-8")).decode("ascii").rstrip("=").lower()


def decode_event_id(event_id: str) -> EventRef | None:
    """The record an id of ours names; None for any other id (a person's, a legacy hash)."""
    if not EVENT_ID_PATTERN.fullmatch(event_id) or len(event_id) > 400:
        return None
    padded = event_id.upper() + "=" * (-len(event_id) % 8)
    try:
        parts = base64.b32hexdecode(padded).decode("utf-8").split("/")
    except (binascii.Error, ValueError):
        return None
    generation = parts[3] if len(parts) == 4 else "0"
    well_formed = (
        len(parts) in (3, 4)
        and parts[0] == EVENT_ID_SCHEME
        and all(ID_PATTERN.fullmatch(p) for p in parts[1:3])
        and generation.isdigit()
        and int(generation) <= MAX_GENERATION
    )
    if not well_formed:
        return None
    ref = EventRef(parts[1], parts[2], int(generation))
    # Only the canonical spelling is ours (base32 can spell the same bytes twice; "/01").
    if event_id_for(ref.catalog_id, ref.record_id, ref.generation) != event_id:
        return None
    return ref


def generation_of(event_id: str | None, catalog_id: str, record_id: str) -> int:
    """Which of the record's events `event_id` is (0 when it is not one of them)."""
    ref = decode_event_id(event_id) if event_id else None
    if ref is None or (ref.catalog_id, ref.record_id) != (catalog_id, record_id):
        return 0
    return ref.generation


def is_event_id(value: str) -> bool:
    return bool(EVENT_ID_PATTERN.fullmatch(value))
