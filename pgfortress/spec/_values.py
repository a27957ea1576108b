"""How values may be written in the spec, turned into what the models hold.

YAML allows shortcuts the models should not have to know about: one name
instead of a list of one, an empty entry for "all defaults", a role name
instead of a membership mapping, lower-case privilege names, timestamps in
any zone. These functions run before validation: a value that is plainly
wrong raises ValueError saying how to write it, and a value of the wrong type
is passed on for the model to refuse.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from .grant_targets import ALL, GrantTarget, parse_target

__all__ = [
    "as_list",
    "as_mapping",
    "as_memberships",
    "as_privileges",
    "as_target",
    "as_valid_until",
]

_PRIVILEGE_ALIASES = {"TEMP": "TEMPORARY", "ALL PRIVILEGES": ALL}


def as_list(value: object) -> object:
    """Let a single name be written without list brackets."""
    return [value] if isinstance(value, str) else [] if value is None else value


def as_mapping(value: object) -> object:
    """An empty entry (``web_anon:``) means all defaults."""
    if isinstance(value, dict):
        return {key: {} if item is None else item for key, item in value.items()}
    return {} if value is None else value


def as_memberships(value: object) -> object:
    """``member_of: [app_ro]`` is short for ``[{role: app_ro}]``."""
    items = as_list(value)
    if isinstance(items, list):
        return [{"role": item} if isinstance(item, str) else item for item in items]
    return items


def as_valid_until(value: object) -> object:
    """A timestamp with a zone, stored the way the catalog fact reads it back.

    The catalog shows expiry in UTC to the second, so the spec's value is
    brought to that form; otherwise the same moment written another way would
    look like a change on every run.
    """
    if value is None or value == "infinity":
        return value
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        raise ValueError(
            f"{value.isoformat()} is a date alone; write a timestamp with a zone, "
            f"such as {value.isoformat()}T00:00:00Z"
        )
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO timestamp; write one such as "
                "2027-12-31T00:00:00Z, or infinity for no expiry"
            ) from None
    else:
        raise ValueError("write a timestamp such as 2027-12-31T00:00:00Z")
    if moment.tzinfo is None:
        raise ValueError(
            f"{moment.isoformat()} has no time zone, so the server would read it in "
            "its own; add Z (UTC) or an offset such as +02:00"
        )
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_target(value: object) -> GrantTarget:
    """Parse ``on:``; see :mod:`pgfortress.spec.grant_targets` for the grammar."""
    if isinstance(value, GrantTarget):
        return value
    if not isinstance(value, str):
        raise ValueError("write the object as text, such as: schema app")
    return parse_target(value)


def as_privileges(value: object) -> object:
    """Privilege names in upper case, with PostgreSQL's aliases resolved."""
    items = as_list(value)
    if not isinstance(items, list):
        return items
    names = [
        " ".join(item.upper().split()) if isinstance(item, str) else item
        for item in items
    ]
    return [_PRIVILEGE_ALIASES.get(name, name) for name in names]
