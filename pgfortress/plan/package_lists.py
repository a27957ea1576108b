"""Refreshing a host's apt package lists without ever waiting forever.

``apt-get update`` has no overall time limit: a mirror or proxy that answers
a request with headers and then nothing can hold it, and the deploy with it,
indefinitely (the lab's apt proxy did, once per few hundred runs). The
refresh is therefore bounded: each attempt gets a time limit, a failed or
stuck attempt is tried again, and when every attempt fails the deploy stops
with a message that says what to check.
"""

from __future__ import annotations

from typing import Any

from pgfortress.errors import SpecError

__all__ = [
    "ATTEMPTS",
    "ATTEMPT_SECONDS",
    "KEY",
    "attempt_seconds_from",
    "refresh_script",
]

ATTEMPTS = 3
ATTEMPT_SECONDS = 300
KEY = "apt_refresh_seconds"
_LIMITS = (30, 3600)


def attempt_seconds_from(host: str, data: dict[str, Any]) -> int:
    """The time limit of one ``apt-get update`` attempt from host data.

    ``apt_refresh_seconds`` (default 300) must be a whole number of seconds
    from 30 to 3600; SpecError naming the host, the key and the fix otherwise.
    """
    value = data.get(KEY, ATTEMPT_SECONDS)
    low, high = _LIMITS
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise SpecError(
            f"host {host}: {KEY}: {value!r} is not a time limit pgfortress can use: "
            f"give a whole number of seconds from {low} to {high} (default "
            f"{ATTEMPT_SECONDS}) for one apt-get update attempt"
        )
    return value


def refresh_script(
    attempts: int = ATTEMPTS, attempt_seconds: int = ATTEMPT_SECONDS
) -> str:
    """Shell text running ``apt-get update`` up to ``attempts`` times.

    ``timeout`` signals its whole process group, so apt's download methods
    end with apt-get; apt's own lock goes with the process that held it.
    """
    if attempts < 1 or attempt_seconds < 1:
        raise ValueError("attempts and attempt_seconds must be at least 1")
    return (
        "attempt=0; "
        f"while [ $attempt -lt {attempts} ]; do "
        "attempt=$((attempt + 1)); "
        f"timeout -k 10 {attempt_seconds} apt-get update -q && exit 0; "
        "status=$?; "
        'echo "pgfortress: apt-get update failed or did not finish '
        f'(exit $status), attempt $attempt of {attempts}" >&2; '
        "sleep 2; "
        "done; "
        f'echo "pgfortress: apt-get update did not succeed in {attempts} attempts '
        f"of at most {attempt_seconds} s each: check the host's apt sources "
        '(/etc/apt/sources.list*) and any apt proxy it uses" >&2; '
        "exit 1"
    )
