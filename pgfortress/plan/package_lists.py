"""Refreshing a host's apt package lists without ever waiting forever.

``apt-get update`` has no overall time limit: a mirror or proxy that answers
a request with headers and then nothing can hold it, and the deploy with it,
indefinitely (the lab's apt proxy did, once per few hundred runs). The
refresh is therefore bounded: each attempt gets a time limit, a failed or
stuck attempt is tried again, and when every attempt fails the deploy stops
with a message that says what to check.
"""

from __future__ import annotations

__all__ = ["ATTEMPTS", "ATTEMPT_SECONDS", "refresh_script"]

ATTEMPTS = 3
ATTEMPT_SECONDS = 300


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
