"""The Meetings catalog's field config, read once per instance and checked against the map."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from .domain import CatalogSchema, parse_catalog
from .errors import ConfigError
from .settings import Settings


class CatalogReader(Protocol):
    def get_catalog(self, catalog_id: str) -> dict[str, Any]: ...


class CatalogSchemaCache:
    """The Meetings catalog's field config, read once per instance (one Bpium call)."""

    def __init__(self, bpium: CatalogReader, settings: Settings) -> None:
        self._bpium = bpium
        self._settings = settings
        self._schema: CatalogSchema | None = None
        self._lock = threading.Lock()

    def get(self) -> CatalogSchema:
        with self._lock:
            if self._schema is None:
                catalog_id = self._settings.meetings_catalog
                schema = parse_catalog(self._bpium.get_catalog(catalog_id))
                fields = self._settings.fields
                configured = {r: getattr(fields, r) for r in fields.__dataclass_fields__}
                missing = sorted(
                    f"{r}={f}" for r, f in configured.items() if f and f not in schema.fields
                )
                if missing:
                    raise ConfigError(
                        f"BPIUM_FIELDS names fields catalog {catalog_id} does not have: "
                        + ", ".join(missing),
                        problems=missing,
                    )
                self._schema = schema
            return self._schema
