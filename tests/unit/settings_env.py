"""The environment the unit tests build Settings from: the names DESIGN §4 requires, and a
field map of the seven required roles."""

from __future__ import annotations

import json

FIELDS = {
    "title": "2",
    "start": "3",
    "end": "4",
    "agenda": "5",
    "employees": "6",
    "guests": "7",
    "event_id": "8",
}
BASE = {
    "BPIUM_URL": "https://acme.bpium.ru/",
    "BPIUM_MEETINGS_CATALOG": "7",
    "BPIUM_FIELDS": json.dumps(FIELDS),
    "GCP_PROJECT": "acme",
    "TASKS_QUEUE": "projects/acme/locations/europe-west1/queues/bpium-gcal-meetings",
    "SYNC_WORKER_URL": "https://europe-west1-acme.cloudfunctions.net/sync-meeting",
}
