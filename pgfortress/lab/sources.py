"""The machine's Debian package sources, reused for lab hosts and debootstrap.

No mirror is ever named in pgfortress itself: the lab reads the machine's own
``/etc/apt/sources.list``, ``sources.list.d/*.list`` (one-line format) and
``sources.list.d/*.sources`` (deb822 format) at run time, keeps the Debian
archive entries of the lab's suite family and hands those to debootstrap and to
the hosts' ``sources.list``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pgfortress.errors import LabError

__all__ = [
    "AptSource",
    "archive_mirror",
    "debian_sources",
    "parse_deb822",
    "parse_one_line",
    "read_machine_sources",
    "render_sources_list",
    "sources_for_suite",
]


@dataclass(frozen=True)
class AptSource:
    """One (type, URI, suite) combination with its components."""

    kind: str
    uri: str
    suite: str
    components: tuple[str, ...]


def parse_one_line(text: str) -> list[AptSource]:
    """Entries of a ``sources.list`` style file."""
    entries: list[AptSource] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 3 or words[0] not in ("deb", "deb-src"):
            continue
        kind, rest = words[0], words[1:]
        if rest[0].startswith("["):
            # Options such as "[ arch=amd64 signed-by=... ]" may contain spaces.
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) < 2:
            continue
        entries.append(AptSource(kind, rest[0], rest[1], tuple(rest[2:])))
    return entries


def parse_deb822(text: str) -> list[AptSource]:
    """Entries of a deb822 ``.sources`` file, disabled stanzas left out."""
    entries: list[AptSource] = []
    for stanza in _stanzas(text):
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        components = tuple(stanza.get("components", "").split())
        for kind in stanza.get("types", "").split():
            for uri in stanza.get("uris", "").split():
                for suite in stanza.get("suites", "").split():
                    entries.append(AptSource(kind, uri, suite, components))
    return entries


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    field = ""
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, field = {}, ""
        elif line[0] in " \t" and field:
            current[field] += " " + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            field = name.strip().lower()
            current[field] = value.strip()
    return stanzas


def debian_sources(entries: Iterable[AptSource], codename: str) -> list[AptSource]:
    """Debian archive entries of ``codename``'s family, component main only.

    Kept: ``<codename>`` and ``<codename>-updates`` from URIs ending in
    ``/debian``, and ``<codename>-security`` from URIs ending in
    ``/debian-security``. URIs are turned into plain http: the apt proxy can
    only cache plain http, and apt checks the archive signatures either way.
    """
    wanted = {
        codename: "/debian",
        f"{codename}-updates": "/debian",
        f"{codename}-security": "/debian-security",
    }
    kept: list[AptSource] = []
    for entry in entries:
        parts = urlsplit(entry.uri)
        path = parts.path.rstrip("/")
        if entry.kind != "deb" or "main" not in entry.components:
            continue
        if parts.scheme not in ("http", "https") or not parts.netloc:
            continue
        if wanted.get(entry.suite) is None or not path.endswith(wanted[entry.suite]):
            continue
        uri = urlunsplit(("http", parts.netloc, path, "", ""))
        source = AptSource("deb", uri, entry.suite, ("main",))
        if source not in kept:
            kept.append(source)
    return kept


def sources_for_suite(entries: Iterable[AptSource], codename: str) -> list[AptSource]:
    """Debian entries for ``codename``, from the machine's mirrors.

    The machine's own entries for ``codename`` when it has any; otherwise the
    entries of the first Debian release it does name, moved to ``codename``
    (a Debian 12 machine's mirror serves Debian 13 too, under its own
    suites), so the apt proxy's mirror list stays the machine's.
    """
    entries = list(entries)
    found = debian_sources(entries, codename)
    if found:
        return found
    for base in sorted({entry.suite.split("-", 1)[0] for entry in entries}):
        mirrors = debian_sources(entries, base)
        if any(entry.suite == base for entry in mirrors):
            return [
                replace(entry, suite=codename + entry.suite[len(base) :])
                for entry in mirrors
            ]
    return []


def archive_mirror(entries: Iterable[AptSource], codename: str) -> str:
    """URI of the main archive for ``codename``; debootstrap installs from it."""
    for entry in entries:
        if entry.suite == codename:
            return entry.uri
    raise LabError(
        f"no Debian archive entry for {codename} in /etc/apt/sources.list or "
        "/etc/apt/sources.list.d/: add one naming your Debian mirror, e.g. "
        f"`deb http://<mirror>/debian {codename} main`"
    )


def render_sources_list(entries: Iterable[AptSource]) -> str:
    """The hosts' ``/etc/apt/sources.list``."""
    lines = ["# Written by pgfortress lab from the control machine's sources."]
    lines += [f"deb {e.uri} {e.suite} {' '.join(e.components)}" for e in entries]
    return "\n".join(lines) + "\n"


def read_machine_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """All entries apt on this machine is configured with."""
    entries: list[AptSource] = []
    main_list = etc_apt / "sources.list"
    if main_list.is_file():
        entries += parse_one_line(main_list.read_text())
    parts = etc_apt / "sources.list.d"
    for path in sorted(parts.glob("*.list")) if parts.is_dir() else []:
        entries += parse_one_line(path.read_text())
    for path in sorted(parts.glob("*.sources")) if parts.is_dir() else []:
        entries += parse_deb822(path.read_text())
    return entries
