"""Several reads of one host in one round trip.

Each SSH command costs the control machine and the host a channel, a shell
and a wait; with many hosts those add up. :func:`batched_command` runs
several read-only shell commands one after the other in one shell, each in
its own subshell and under a numbered marker line, and :func:`split_batch`
gives each command's output lines back, in order. A command that prints
nothing gets an empty list. Every command runs even when one before it
failed, and the batch then fails as a whole, as the separate reads would
have: a read that must tolerate failure says so itself (``|| true``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import PgFortressError

__all__ = ["BATCH_MARK", "BatchError", "batched_command", "split_batch"]

# No read pgfortress batches prints a line starting with this: file states
# print owners, digests and words, catalogs one JSON document, which never
# starts a line with "#".
BATCH_MARK = "#pgfortress-batch "


class BatchError(PgFortressError):
    """A batch's output does not hold one section per command."""


def batched_command(commands: Sequence[str], prelude: str = "") -> str:
    """One shell command that runs ``commands`` in turn, each under its marker.

    ``prelude`` runs first, in the same shell (variables the commands share,
    so that a long text travels once).
    """
    parts = [prelude] if prelude else []
    parts.append("rc=0")
    for number, command in enumerate(commands):
        parts.append(f"echo '{BATCH_MARK}{number}'; ( {command} ) || rc=1")
    parts.append("exit $rc")
    return "; ".join(parts)


def split_batch(lines: Iterable[str], count: int | None = None) -> list[list[str]]:
    """The output lines of each command, from a batch's output; ``count``,
    when given, is how many commands the batch ran."""
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith(BATCH_MARK):
            number = line[len(BATCH_MARK) :].strip()
            if number != str(len(sections)):
                raise BatchError(f"batch output: section {number!r} out of order")
            sections.append([])
        elif sections:
            sections[-1].append(line)
        elif line.strip():
            raise BatchError(f"batch output: {line!r} before the first section")
    if count is not None and len(sections) != count:
        raise BatchError(f"batch output: {len(sections)} sections, expected {count}")
    return sections
