"""Whether Debian packages are installed, asked of dpkg for those packages only.

pyinfra's ``DebPackages`` lists every package on the host (``dpkg -l``) and
parses them all, to answer for the two a role needs. :func:`package_state_command`
asks ``dpkg-query`` about the named packages only; :func:`installed_packages`
reads its answer.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence

__all__ = ["installed_packages", "package_state_command"]


def package_state_command(packages: Sequence[str]) -> str:
    """Shell printing ``<package> <status>`` for each of ``packages`` dpkg knows.

    dpkg-query fails when it knows one of them not at all, after printing the
    others: that is an answer too (not installed), not a failed read.
    """
    if not packages:
        raise ValueError("name at least one package")
    names = " ".join(shlex.quote(p) for p in packages)
    return (
        "dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' "
        f"{names} 2>/dev/null || true"
    )


def installed_packages(lines: Iterable[str]) -> set[str]:
    """The packages installed, from what :func:`package_state_command` printed.

    The status is dpkg's abbreviation: the wanted state (``i``nstall or
    ``h``old) then the current one, which must be ``i``nstalled; a package
    removed with its configuration kept (``rc``) is not installed.
    """
    installed = set()
    for line in lines:
        words = line.split()
        if len(words) == 2 and words[1][:2] in ("ii", "hi"):
            installed.add(words[0])
    return installed
