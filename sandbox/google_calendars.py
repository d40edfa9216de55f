"""Calendars, the account's calendar list and ACLs of the Calendar stand-in.

- `calendars`: insert (`summary` required; id `c_<hex>@group.calendar.google.com`; the
  account owns it and finds it on its calendar list), get, patch, update, delete (not the
  primary calendar: 400 `cannotDeletePrimaryCalendar`), clear (cancels every event).
- `calendarList`: list (paged; `minAccessRole`, `showHidden`, `showDeleted`, `syncToken`),
  get, patch/update of the account's own settings (`hidden`, `selected`, `summaryOverride`,
  colours, `defaultReminders`), delete (off the list) and insert (back on it).
- `acl`: list (paged; `showDeleted`, `syncToken`), insert, get, patch, update, delete. Rule
  ids are `user:<email>`, `group:<email>`, `domain:<domain>` or `default`; inserting a rule
  for a scope that has one changes its role (one rule per scope, as at Google). Each owned
  calendar has the owner rule `user:<account>`, which the account cannot change
  (403 `cannotChangeOwnAcl`). Reading an ACL takes writer access, changing it owner access.
  insert, patch and update e-mail the scope unless `sendNotifications=false`: each is
  appended to `notifications` as {"calendarId", "action": "acl_insert"|"acl_patch"|
  "acl_update", "scope", "role"}; delete, and a role of "none", e-mail nobody.

Calendars added with `GoogleStandIn.add_calendar` may give the account a weaker access role;
event writes then answer 403 `requiredAccessLevel` as Google does.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import Response

from sandbox.google_schema import EMAIL_RE, MAX_REMINDERS, REMINDER_METHODS
from sandbox.google_store import (
    ACCESS_ROLES,
    ROLE_RANK,
    AclEntry,
    Calendar,
    StandInBase,
    drop_nulls,
    etag_of,
)
from sandbox.google_wire import ApiError, bad, find_zone, json_response

DEFAULT_LIST_RESULTS = 100
MAX_LIST_RESULTS = 250
SCOPE_TYPES = ("default", "user", "group", "domain")
DOMAIN_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLORS = {"colorId": "14", "backgroundColor": "#9fe1e7", "foregroundColor": "#000000"}
ENTRY_SETTINGS = (
    "summaryOverride", "colorId", "backgroundColor", "foregroundColor", "hidden", "selected",
    "defaultReminders", "notificationSettings",
)  # fmt: skip
CONFERENCE_PROPERTIES = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}


def _no_content() -> Response:
    return Response(status=204)


class CalendarsApi(StandInBase):
    """calendars.*, calendarList.* and acl.*."""

    # ------------------------------------------------------------------ state

    def _new_calendar(
        self,
        calendar_id: str,
        summary: str,
        time_zone: str,
        access_role: str = "owner",
        *,
        description: str = "",
        location: str = "",
    ) -> Calendar:
        now = self.clock()
        calendar = Calendar(
            calendar_id, summary, time_zone, access_role, description, location,
            order=self._next_order(), rev=self._next_rev(),
        )  # fmt: skip
        calendar.etag = calendar.entry_etag = etag_of(now, self._rev)
        self._calendars[calendar_id] = calendar
        if access_role == "owner":
            owner = {"type": "user", "value": self.account_email.lower()}
            self._put_rule(calendar, owner, "owner")
        return calendar

    def _changed_entry(self, calendar: Calendar) -> None:
        calendar.rev = self._next_rev()
        calendar.entry_etag = etag_of(self.clock(), self._rev)

    def _calendar_resource(self, calendar: Calendar) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "kind": "calendar#calendar",
            "etag": calendar.etag,
            "id": calendar.id,
            "summary": calendar.summary,
        }
        if calendar.description:
            resource["description"] = calendar.description
        if calendar.location:
            resource["location"] = calendar.location
        resource["timeZone"] = calendar.time_zone
        if calendar.access_role == "owner" and not self._is_primary(calendar):
            resource["dataOwner"] = self.account_email
        resource["conferenceProperties"] = CONFERENCE_PROPERTIES
        return resource

    def _entry_resource(self, calendar: Calendar) -> dict[str, Any]:
        settings = calendar.settings
        entry: dict[str, Any] = {
            "kind": "calendar#calendarListEntry",
            "etag": calendar.entry_etag,
            "id": calendar.id,
            "summary": calendar.summary,
        }
        if calendar.description:
            entry["description"] = calendar.description
        if calendar.location:
            entry["location"] = calendar.location
        entry["timeZone"] = calendar.time_zone
        if "summaryOverride" in settings:
            entry["summaryOverride"] = settings["summaryOverride"]
        for name, default in DEFAULT_COLORS.items():
            entry[name] = settings.get(name, default)
        if settings.get("hidden"):
            entry["hidden"] = True
        entry["selected"] = settings.get("selected", True)
        entry["accessRole"] = calendar.access_role
        entry["defaultReminders"] = settings.get("defaultReminders", [])
        if "notificationSettings" in settings:
            entry["notificationSettings"] = settings["notificationSettings"]
        if self._is_primary(calendar):
            entry["primary"] = True
        elif calendar.access_role == "owner":
            entry["dataOwner"] = self.account_email
        entry["conferenceProperties"] = CONFERENCE_PROPERTIES
        if calendar.deleted or not calendar.listed:
            entry["deleted"] = True
        return entry

    # ------------------------------------------------------------------ calendars

    def _calendars_insert(self) -> Response:
        self._authorize("calendars", "insert")
        self._query("calendars", "insert")
        body = drop_nulls(self._body("Calendar", "calendar"))
        if not body.get("summary"):
            raise ApiError(400, "required", "Missing title.")
        with self._lock:
            primary = self._calendars[self.account_email]
            time_zone = self._time_zone(body.get("timeZone") or primary.time_zone)
            calendar_id = f"c_{secrets.token_hex(32)}@group.calendar.google.com"
            calendar = self._new_calendar(
                calendar_id, body["summary"], time_zone, "owner",
                description=body.get("description", ""), location=body.get("location", ""),
            )  # fmt: skip
            return json_response(self._calendar_resource(calendar))

    def _calendars_get(self, calendar_id: str) -> Response:
        self._authorize("calendars", "get")
        self._query("calendars", "get")
        with self._lock:
            return json_response(self._calendar_resource(self._calendar(calendar_id)))

    def _calendars_patch(self, calendar_id: str) -> Response:
        return self._calendars_write(calendar_id, "patch")

    def _calendars_update(self, calendar_id: str) -> Response:
        return self._calendars_write(calendar_id, "update")

    def _calendars_write(self, calendar_id: str, method: str) -> Response:
        self._authorize("calendars", method)
        self._query("calendars", method)
        body = self._body("Calendar", "calendar")
        with self._lock:
            calendar = self._calendar(calendar_id, "owner")
            if method == "update":
                body = {"description": None, "location": None, **body}
                if not body.get("summary"):
                    raise ApiError(400, "required", "Missing title.")
            if "summary" in body and not body["summary"]:
                raise ApiError(400, "required", "Missing title.")
            time_zone = calendar.time_zone
            if body.get("timeZone"):
                time_zone = self._time_zone(body["timeZone"])
            calendar.summary = body.get("summary") or calendar.summary
            for name in ("description", "location"):
                if name in body:
                    setattr(calendar, name, body[name] or "")
            calendar.time_zone = time_zone
            calendar.etag = etag_of(self.clock(), self._next_rev())
            return json_response(self._calendar_resource(calendar))

    def _calendars_delete(self, calendar_id: str) -> Response:
        self._authorize("calendars", "delete")
        self._query("calendars", "delete")
        with self._lock:
            calendar = self._calendar(calendar_id, "owner")
            if self._is_primary(calendar):
                raise ApiError(
                    400, "cannotDeletePrimaryCalendar",
                    "The primary calendar cannot be deleted; use calendars.clear instead.",
                )  # fmt: skip
            calendar.deleted = True
            calendar.events.clear()
            self._changed_entry(calendar)
        return _no_content()

    def _calendars_clear(self, calendar_id: str) -> Response:
        self._authorize("calendars", "clear")
        self._query("calendars", "clear")
        with self._lock:
            calendar = self._calendar(calendar_id, "owner")
            now = self.clock()
            for stored in calendar.events.values():
                if stored.body.get("status") != "cancelled":
                    stored.body["status"] = "cancelled"
                    self._touch(stored, now)
        return _no_content()

    @staticmethod
    def _time_zone(name: str) -> str:
        if find_zone(name) is None:
            raise bad(f"Invalid time zone: {name}")
        return name

    # ------------------------------------------------------------------ calendarList

    def _calendar_list_list(self) -> Response:
        self._authorize("calendarList", "list")
        params = self._query("calendarList", "list")
        max_results = self._max_results(params, DEFAULT_LIST_RESULTS, MAX_LIST_RESULTS)
        if "syncToken" in params and "minAccessRole" in params:
            raise bad("Parameter minAccessRole cannot be used together with syncToken.")
        query = self._query_key()
        scope = "calendarList"
        with self._lock:
            sync = self._sync_state(scope, params["syncToken"]) if "syncToken" in params else None
            page = self._page_state(scope, query, params)
            min_rank = ROLE_RANK[params.get("minAccessRole", "freeBusyReader")]
            show_deleted = bool(params.get("showDeleted")) or sync is not None
            show_hidden = bool(params.get("showHidden")) or sync is not None
            matches: list[tuple[tuple[int, ...], Calendar]] = []
            for calendar in self._calendars.values():
                if (calendar.deleted or not calendar.listed) and not show_deleted:
                    continue
                if calendar.settings.get("hidden") and not show_hidden:
                    continue
                if ROLE_RANK[calendar.access_role] < min_rank:
                    continue
                if sync is not None and calendar.rev <= sync.rev:
                    continue
                key = (0 if self._is_primary(calendar) else 1, calendar.order)
                matches.append((key, calendar))
            chosen, next_page = self._cut_page(matches, page, max_results, scope, query)
            result: dict[str, Any] = {
                "kind": "calendar#calendarList",
                "etag": f'"p{int(self.clock() * 1000)}{self._rev}"',
                "items": [self._entry_resource(calendar) for calendar in chosen],
            }
            if next_page is not None:
                result["nextPageToken"] = next_page
            else:
                result["nextSyncToken"] = self._issue_sync_token(scope, page)
            return json_response(result)

    def _listed(self, calendar_id: str) -> Calendar:
        calendar = self._calendars.get(self._resolve(calendar_id))
        if calendar is None or calendar.deleted or not calendar.listed:
            raise ApiError(404, "notFound", "Not Found")
        return calendar

    def _calendar_list_get(self, calendar_id: str) -> Response:
        self._authorize("calendarList", "get")
        self._query("calendarList", "get")
        with self._lock:
            return json_response(self._entry_resource(self._listed(calendar_id)))

    def _calendar_list_patch(self, calendar_id: str) -> Response:
        return self._calendar_list_write(calendar_id, "patch")

    def _calendar_list_update(self, calendar_id: str) -> Response:
        return self._calendar_list_write(calendar_id, "update")

    def _calendar_list_write(self, calendar_id: str, method: str) -> Response:
        self._authorize("calendarList", method)
        params = self._query("calendarList", method)
        body = self._body("CalendarListEntry", "entry")
        with self._lock:
            calendar = self._listed(calendar_id)
            self._apply_settings(calendar, body, params, replace=method == "update")
            return json_response(self._entry_resource(calendar))

    def _calendar_list_insert(self) -> Response:
        self._authorize("calendarList", "insert")
        params = self._query("calendarList", "insert")
        body = self._body("CalendarListEntry", "entry")
        if not body.get("id"):
            raise ApiError(400, "required", "Missing calendar id.")
        with self._lock:
            calendar = self._calendar(body["id"])
            calendar.listed = True
            self._apply_settings(calendar, body, params, replace=True)
            return json_response(self._entry_resource(calendar))

    def _calendar_list_delete(self, calendar_id: str) -> Response:
        self._authorize("calendarList", "delete")
        self._query("calendarList", "delete")
        with self._lock:
            calendar = self._listed(calendar_id)
            if self._is_primary(calendar):
                raise bad("The primary calendar cannot be removed from the calendar list.")
            calendar.listed = False
            self._changed_entry(calendar)
        return _no_content()

    def _apply_settings(
        self, calendar: Calendar, body: dict[str, Any], params: dict[str, Any], *, replace: bool
    ) -> None:
        """The account's own settings of a list entry; the calendar's fields are read-only."""
        given = {name: body[name] for name in ENTRY_SETTINGS if name in body}
        rgb = {"backgroundColor", "foregroundColor"} & {k for k, v in given.items() if v}
        if rgb and not params.get("colorRgbFormat"):
            raise bad("Set colorRgbFormat=true to give backgroundColor or foregroundColor.")
        for name in rgb:
            if not COLOR_RE.match(given[name]):
                raise bad(f"Invalid value for: {name}")
        reminders = given.get("defaultReminders") or []
        if len(reminders) > MAX_REMINDERS:
            raise ApiError(400, "tooManyReminders", "The maximum number of reminders is 5.")
        for reminder in reminders:
            if reminder.get("method") not in REMINDER_METHODS or "minutes" not in reminder:
                raise bad("Invalid default reminder.")
        settings = {} if replace else dict(calendar.settings)
        for name, value in given.items():
            if value is None:
                settings.pop(name, None)
            else:
                settings[name] = drop_nulls(value)
        if rgb and "colorId" not in given:
            settings.pop("colorId", None)
        calendar.settings = settings
        self._changed_entry(calendar)

    # ------------------------------------------------------------------ acl

    def _put_rule(self, calendar: Calendar, scope: dict[str, str], role: str) -> AclEntry:
        """Creates the rule of `scope`, or changes the role of the one it has."""
        rule_id = "default" if scope["type"] == "default" else f"{scope['type']}:{scope['value']}"
        now = self.clock()
        entry = calendar.acl.get(rule_id)
        if entry is None:
            entry = AclEntry(rule_id, role, scope, self._next_order(), 0, "")
            calendar.acl[rule_id] = entry
        entry.role, entry.deleted = role, False
        entry.rev = self._next_rev()
        entry.etag = etag_of(now, self._rev)
        return entry

    @staticmethod
    def _rule(calendar: Calendar, rule_id: str) -> AclEntry:
        entry = calendar.acl.get(rule_id) or calendar.acl.get(rule_id.lower())
        if entry is None or entry.deleted:
            raise ApiError(404, "notFound", "Not Found")
        return entry

    def _own_rule_stays(self, calendar: Calendar, rule_id: str, role: str | None) -> None:
        entry = calendar.acl.get(rule_id)
        if rule_id == f"user:{self.account_email.lower()}" and entry and role != entry.role:
            raise ApiError(403, "cannotChangeOwnAcl", "Cannot change your own access level.")

    @staticmethod
    def _scope(scope: Any) -> dict[str, str]:
        """The checked scope of a rule, its value lower-cased."""
        if not isinstance(scope, dict) or not scope.get("type"):
            raise ApiError(400, "required", "Missing scope type.")
        kind, value = scope["type"], str(scope.get("value") or "").strip().lower()
        if kind not in SCOPE_TYPES:
            raise bad("Invalid scope type value.")
        if kind == "default":
            if value:
                raise bad("Invalid scope value: the default scope takes none.")
            return {"type": "default"}
        if not value:
            raise ApiError(400, "required", "Missing scope value.")
        if (kind == "domain" and not DOMAIN_RE.match(value)) or (
            kind != "domain" and not EMAIL_RE.match(value)
        ):
            raise bad("Invalid scope value.")
        return {"type": kind, "value": value}

    @staticmethod
    def _role(role: Any) -> str:
        if not role:
            raise ApiError(400, "required", "Missing role.")
        if role not in ACCESS_ROLES:
            raise bad("Invalid role value.")
        return str(role)

    def _acl_list(self, calendar_id: str) -> Response:
        self._authorize("acl", "list")
        params = self._query("acl", "list")
        max_results = self._max_results(params, DEFAULT_LIST_RESULTS, MAX_LIST_RESULTS)
        query = self._query_key()
        with self._lock:
            calendar = self._calendar(calendar_id, "writer")
            scope = f"acl:{calendar.id}"
            sync = self._sync_state(scope, params["syncToken"]) if "syncToken" in params else None
            page = self._page_state(scope, query, params)
            show_deleted = bool(params.get("showDeleted")) or sync is not None
            matches = [
                ((entry.order,), entry)
                for entry in calendar.acl.values()
                if (show_deleted or not entry.deleted) and (sync is None or entry.rev > sync.rev)
            ]
            chosen, next_page = self._cut_page(matches, page, max_results, scope, query)
            result: dict[str, Any] = {
                "kind": "calendar#acl",
                "etag": f'"p{int(self.clock() * 1000)}{self._rev}"',
                "items": [entry.resource() for entry in chosen],
            }
            if next_page is not None:
                result["nextPageToken"] = next_page
            else:
                result["nextSyncToken"] = self._issue_sync_token(scope, page)
            return json_response(result)

    def _notify_acl(
        self, calendar: Calendar, action: str, entry: AclEntry, params: dict[str, Any]
    ) -> None:
        # sendNotifications: "Whether to send notifications about the calendar sharing
        # change ... The default is True"; "there are no notifications on access removal"
        # (discovery doc, acl.insert/patch/update).
        if params.get("sendNotifications", True) and entry.role != "none":
            self.notifications.append(
                {
                    "calendarId": calendar.id,
                    "action": action,
                    "scope": dict(entry.scope),
                    "role": entry.role,
                }
            )

    def _acl_insert(self, calendar_id: str) -> Response:
        self._authorize("acl", "insert")
        params = self._query("acl", "insert")
        body = self._body("AclRule", "rule")
        role, scope = self._role(body.get("role")), self._scope(body.get("scope"))
        with self._lock:
            calendar = self._calendar(calendar_id, "owner")
            rule_id = (
                "default" if scope["type"] == "default" else f"{scope['type']}:{scope['value']}"
            )
            self._own_rule_stays(calendar, rule_id, role)
            entry = self._put_rule(calendar, scope, role)
            self._notify_acl(calendar, "acl_insert", entry, params)
            return json_response(entry.resource())

    def _acl_get(self, calendar_id: str, rule_id: str) -> Response:
        self._authorize("acl", "get")
        self._query("acl", "get")
        with self._lock:
            calendar = self._calendar(calendar_id, "writer")
            return json_response(self._rule(calendar, rule_id).resource())

    def _acl_patch(self, calendar_id: str, rule_id: str) -> Response:
        return self._acl_write(calendar_id, rule_id, "patch")

    def _acl_update(self, calendar_id: str, rule_id: str) -> Response:
        return self._acl_write(calendar_id, rule_id, "update")

    def _acl_write(self, calendar_id: str, rule_id: str, method: str) -> Response:
        self._authorize("acl", method)
        params = self._query("acl", method)
        body = self._body("AclRule", "rule")
        if method == "update" or body.get("scope") is not None:
            scope: dict[str, str] | None = self._scope(body.get("scope"))
        else:
            scope = None
        role = self._role(body["role"]) if body.get("role") is not None else None
        with self._lock:
            calendar = self._calendar(calendar_id, "owner")
            entry = self._rule(calendar, rule_id)
            if scope is not None and scope != entry.scope:
                raise bad("The scope of an ACL rule cannot be changed.")
            self._own_rule_stays(calendar, entry.id, role or entry.role)
            entry = self._put_rule(calendar, entry.scope, role or entry.role)
            self._notify_acl(calendar, f"acl_{method}", entry, params)
            return json_response(entry.resource())

    def _acl_delete(self, calendar_id: str, rule_id: str) -> Response:
        self._authorize("acl", "delete")
        self._query("acl", "delete")
        with self._lock:
            calendar = self._calendar(calendar_id, "owner")
            entry = self._rule(calendar, rule_id)
            self._own_rule_stays(calendar, entry.id, None)
            entry.deleted = True
            entry.rev = self._next_rev()
            entry.etag = etag_of(self.clock(), self._rev)
        return _no_content()
